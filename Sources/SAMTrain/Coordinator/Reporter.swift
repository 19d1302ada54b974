import Foundation

/// What the coordinator tells the user. Only rank 0 prints; other ranks' reporters are
/// silent. On a terminal, progress overwrites one line; in a log, it is a line per report.
public final class Reporter {
    public let enabled: Bool
    private let isTerminal: Bool
    private var progressShown = false

    public init(rank: Int) {
        enabled = rank == 0
        // Under mpirun, a rank's stdout is a pty even when the job's output goes to a file:
        // launch/train says whether the user's terminal is one (SAMTRAIN_TTY).
        let environment = ProcessInfo.processInfo.environment
        if environment["OMPI_COMM_WORLD_RANK"] != nil {
            isTerminal = environment["SAMTRAIN_TTY"] == "1"
        } else {
            isTerminal = isatty(STDOUT_FILENO) != 0
        }
    }

    public func info(_ line: String) {
        guard enabled else { return }
        clearProgress()
        print(line)
        fflush(nil)   // every output stream: C's `stdout` is a mutable global Swift 6 will not touch
    }

    public func progress(epoch: Int, epochs: Int, step: Int, steps: Int, loss: Double, accuracy: Double,
                         imagesPerSecond: Double, secondsPerStep: Double) {
        guard enabled else { return }
        let eta = secondsPerStep * Double(steps - step)
        let line = String(format: "epoch %d/%d  step %d/%d  loss %.4f  acc %.4f  %.0f images/s  ETA %.0fs",
                          epoch, epochs, step, steps, loss, accuracy, imagesPerSecond, eta)
        if isTerminal {
            print("\r\u{1B}[2K" + line, terminator: "")
            progressShown = true
        } else {
            print(line)
        }
        fflush(nil)
    }

    public func epoch(_ r: EpochRecord, epochs: Int) {
        info(String(format: "epoch %d/%d  train_loss %.4f  train_acc %.4f  test_loss %.4f  test_acc %.4f  images/s %.0f  time %.1fs",
                    r.epoch, epochs, r.trainLoss, r.trainAccuracy, r.testLoss, r.testAccuracy, r.imagesPerSecond, r.seconds))
    }

    private func clearProgress() {
        if progressShown {
            print("\r\u{1B}[2K", terminator: "")
            progressShown = false
        }
    }
}
