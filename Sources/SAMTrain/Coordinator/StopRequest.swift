import Foundation
import Synchronization

/// A request to stop, from a signal: SIGTERM or SIGINT (a scheduler's notice before
/// preemption, Ctrl-C), or SIGUSR2, the one of them that mpirun passes on to every rank at
/// once (for SIGTERM and SIGINT it waits a second, `odls_base_sigkill_timeout`, and
/// SIGKILLs a second later; launch/train turns its own SIGTERM into SIGUSR2 for mpirun).
///
/// The handler only records the signal; the trainer reads it at each step boundary and the
/// ranks agree on it with one allreduce, so that they all stop after the same step.
public enum StopRequest {
    /// The exit status of a run stopped by a signal after writing its checkpoint on every
    /// rank: EX_TEMPFAIL, "try again later" (the resumed run continues it).
    public static let exitStatus: Int32 = 75

    public static let signals: [Int32] = [SIGTERM, SIGINT, SIGUSR2]

    /// The first stop signal received (0: none). Written by the handler, read by the
    /// trainer at step boundaries.
    public static var received: Int32 { receivedSignal.load(ordering: .relaxed) }

    /// Installs the handlers (idempotent).
    public static func install() {
        for s in signals {
            var action = sigaction()
            // Only a lock-free atomic: all a signal handler may touch.
            action.__sigaction_handler.sa_handler = { number in
                _ = receivedSignal.compareExchange(expected: 0, desired: number, ordering: .relaxed)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(s, &action, nil)
        }
    }

    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGUSR2: "SIGUSR2 (mpirun passing on a stop request)"
        default: "signal \(signal)"
        }
    }

    /// For tests: forget a received signal.
    public static func reset() { receivedSignal.store(0, ordering: .relaxed) }
}

/// The process's one piece of signal state: a signal reaches the process, not an object.
private let receivedSignal = Atomic<Int32>(0)

/// A run stopped at a step boundary on a stop request, after its checkpoint was written.
public struct TrainingStopped: Error {
    public let signal: Int32
    public let step: Int
    /// The checkpoint written at `step` (nil without `--out`).
    public let checkpoint: String?
}

/// No rank outlives the mpirun (or orted) that started it: a thread watches the parent
/// process and ends this rank at once when it is gone (the rank is then an orphan that no
/// one would stop). A checkpoint being written is left intact (they are renamed into place).
public enum LauncherWatch {
    public static func start() {
        guard ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] != nil else { return }
        let parent = getppid()
        let thread = Thread {
            while getppid() == parent { usleep(100_000) }
            let message = "samtrain: rank \(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] ?? "?") ends: its launcher (mpirun, pid \(parent)) is gone\n"
            _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
            _exit(1)
        }
        thread.start()
    }
}
