import ArgumentParser
import SAMTrain

extension AllreduceSchedule: ExpressibleByArgument {}

/// How the gradient allreduce runs, shared by `train` and `bench`. Neither flag changes a
/// result (both schedules issue the same collectives), so neither must match on resume.
struct AllreduceOptions: ParsableArguments {
    @Option(help: "Gradient allreduce: overlap (buckets start during the backward pass) or blocking (the same buckets after it).")
    var allreduce: AllreduceSchedule = .overlap

    @Option(help: "Target size of an allreduce bucket, KiB (whole parameters, cut from the last layer backwards).")
    var bucketKb: Int = 512

    func settings() throws -> AllreduceSettings {
        guard bucketKb > 0, bucketKb <= 1 << 30 else {
            throw ValidationError("--bucket-kb \(bucketKb): must be between 1 and \(1 << 30)")
        }
        return AllreduceSettings(schedule: allreduce, bucketBytes: bucketKb * 1024)
    }
}
