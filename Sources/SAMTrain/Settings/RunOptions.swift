import ArgumentParser

/// How a run is carried out and recorded: threads, progress, output, checkpoints, the
/// watchdog. None of them changes what is computed (`--threads` only its float rounding:
/// docs/algorithms.md §12.4).
public struct RunOptions: SettingsGroup {
    @Option(help: "Threads per rank for samtrain's kernels and its GEMMs; the same count gives the same bits (a checkpoint records it).")
    public var threads: Int = 1

    @Option(help: "Stop after N steps in all.")
    public var maxSteps: Int?

    @Option(help: "Progress line every N steps.")
    public var logEvery: Int = 50

    @Option(help: "Output directory (metrics, checkpoints).")
    public var out: String?

    @Option(help: ArgumentHelp("Also write the metrics as TensorBoard event files into DIR (events.out.tfevents.<time>.<host>; the scalars of metrics.jsonl).", valueName: "DIR"))
    public var tensorboard: String?

    @Option(help: "Checkpoint every N steps (500) or epochs (1epoch); default with --out: every epoch.")
    public var checkpointEvery: CheckpointInterval?

    @Option(help: "Checkpoints to keep (the newest).")
    public var keep: Int = 3

    @Option(help: "Resume from a checkpoint file, or from the newest valid checkpoint in an --out directory.")
    public var resume: String?

    @Option(help: "Seconds a collective may wait for a rank that stopped responding (SIGSTOP, a frozen node) before the job ends with a message naming the step and the ranks.")
    public var collectiveTimeout: Double = 60

    @Flag(help: "Every rank prints the digest of its final parameters.")
    public var reportDigests = false

    public init() {}

    public static var resultDefining: ResultDefining { .none }

    public func validate() throws {
        guard threads >= 1 else { throw SAMTrainError("--threads \(threads): must be at least 1") }
        if let maxSteps, maxSteps <= 0 { throw SAMTrainError("--max-steps \(maxSteps): must be positive") }
        guard logEvery > 0 else { throw SAMTrainError("--log-every \(logEvery): must be positive") }
        guard keep >= 1 else { throw SAMTrainError("--keep \(keep): keep at least 1 checkpoint") }
        guard collectiveTimeout >= 1, collectiveTimeout <= 1e6 else {
            throw SAMTrainError("--collective-timeout \(collectiveTimeout): must be between 1 and 1000000 seconds")
        }
    }
}

/// `--checkpoint-every`: `N` or `Nstep(s)` for steps, `Nepoch(s)` for epochs.
public enum CheckpointInterval: Equatable, Sendable, ExpressibleByArgument, CustomStringConvertible {
    case steps(Int)
    case epochs(Int)

    public init?(argument: String) { try? self.init(parsing: argument) }

    public init(parsing text: String) throws {
        let digits = text.prefix { $0.isNumber }
        let unit = text.dropFirst(digits.count).lowercased()
        guard let n = Int(digits), n > 0 else {
            throw SAMTrainError("--checkpoint-every \(text): give a positive number of steps (500) or epochs (1epoch)")
        }
        switch unit {
        case "", "s", "step", "steps": self = .steps(n)
        case "e", "epoch", "epochs": self = .epochs(n)
        default: throw SAMTrainError("--checkpoint-every \(text): unknown unit \(unit); use steps (500) or epochs (1epoch)")
        }
    }

    public var description: String {
        switch self {
        case .steps(let n): "\(n)"
        case .epochs(let n): "\(n)epoch"
        }
    }
}
