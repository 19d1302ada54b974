import Foundation
import SAMTrain

/// Runs a subcommand's body on every rank and turns its errors into one clear line on
/// stderr and a non-zero exit on every rank, without a stack trace or a hang:
/// - an `AgreedFailure` is known to all ranks: the rank that met it prints, all exit 1;
/// - a `SAMTrainError` thrown by one rank alone is printed by that rank, which then ends
///   the whole job with MPI_Abort (the others may already wait in a collective).
enum MPIJob {
    static func run(_ body: (Communicator) throws -> Void) -> Never {
        let world = Communicator.world()
        LauncherWatch.start()
        do {
            try body(world)
        } catch let stop as TrainingStopped {
            // Every rank stopped after the same step; rank 0 says where to resume from.
            if world.isCoordinator {
                let saved = stop.checkpoint.map { "checkpoint \($0) written; resume with --resume \(($0 as NSString).deletingLastPathComponent)" }
                    ?? "no checkpoint (no --out)"
                FileHandle.standardError.write(Data("samtrain: stopped by \(StopRequest.name(stop.signal)) after step \(stop.step): \(saved) (exit status \(StopRequest.exitStatus))\n".utf8))
            }
            Communicator.finalize()
            exit(StopRequest.exitStatus)
        } catch let failure as AgreedFailure {
            if let message = failure.message {
                report(message, rank: failure.rank, size: world.size)
            } else {
                usleep(300_000)   // let the reporting rank's message out before the job ends
            }
            Communicator.finalize()
            exit(1)
        } catch {
            report("\(error)", rank: world.rank, size: world.size)
            if world.size > 1 { world.abort(code: 1) }
            exit(1)
        }
        Communicator.finalize()
        exit(0)
    }

    static func report(_ message: String, rank: Int, size: Int) {
        let who = size > 1 ? " (rank \(rank))" : ""
        FileHandle.standardError.write(Data("samtrain: error\(who): \(message)\n".utf8))
    }
}
