import ArgumentParser

/// How the gradient allreduce runs, shared by `train` and `bench`. Neither flag changes a
/// result (both schedules issue the same collectives), so neither must match on resume.
public struct CommunicationOptions: SettingsGroup {
    @Option(help: "Gradient allreduce: overlap (buckets start during the backward pass) or blocking (the same buckets after it).")
    public var allreduce: AllreduceSchedule = .overlap

    @Option(help: "Target size of an allreduce bucket, KiB (whole parameters, cut from the last layer backwards).")
    public var bucketKb: Int = 512

    public init() {}

    public static var resultDefining: ResultDefining { .none }

    public func validate() throws {
        guard bucketKb > 0, bucketKb <= 1 << 30 else {
            throw SAMTrainError("--bucket-kb \(bucketKb): must be between 1 and \(1 << 30)")
        }
    }

    public var settings: AllreduceSettings { AllreduceSettings(schedule: allreduce, bucketBytes: bucketKb * 1024) }
}

extension AllreduceSchedule: ExpressibleByArgument {}
