import CMPI

/// When the gradient allreduce of a step runs.
public enum AllreduceSchedule: String, CaseIterable, Codable, Sendable {
    /// Each bucket starts (non-blocking) as soon as the backward pass has finished all of its
    /// parameters, so the last layers' gradients travel while the first layers' are computed.
    case overlap
    /// The same buckets, started after the backward pass and waited for at once (the
    /// reference the overlap must match bit for bit, and the baseline it is measured against).
    case blocking
}

/// How the gradient allreduce is cut and scheduled. It never changes a result: both
/// schedules issue the same non-blocking allreduces on the same buckets, in the same order.
public struct AllreduceSettings: Equatable, Codable, Sendable {
    public var schedule: AllreduceSchedule = .overlap
    /// Target size of a bucket. Small buckets start sooner; each costs one collective's latency.
    public var bucketBytes = 512 * 1024

    public init(schedule: AllreduceSchedule = .overlap, bucketBytes: Int = 512 * 1024) {
        self.schedule = schedule
        self.bucketBytes = bucketBytes
    }
}

/// The mean over a communicator's ranks of one flat buffer of parameter gradients, reduced
/// in buckets of whole parameters. Buckets are cut from the last parameter backwards (the
/// order a backward pass finishes them) and started strictly in that order, which every rank
/// shares, so every rank issues the same collectives in the same order.
///
///     begin(buffer)                 before the backward pass
///     ready(slot) / progress()      from the backward pass, as layers finish
///     finish()                      starts what is left, waits, scales by 1/ranks
///
/// Open MPI advances a non-blocking collective only inside MPI calls, so the backward pass
/// calls `progress()` after every layer.
public final class BucketedAllreduce {
    public let communicator: Communicator
    public let settings: AllreduceSettings
    /// Slices of the buffer, in the order they start (descending offsets).
    public let buckets: [Range<Int>]
    private let bucketOfSlot: [Int]
    private let slotsPerBucket: [Int]
    private var waiting: [Int] = []
    private var started = 0
    private var requests: [MPI_Request?] = []
    private var buffer: FlatBuffer?

    public init(communicator: Communicator, parameters: [ParameterSlot], settings: AllreduceSettings) {
        self.communicator = communicator
        self.settings = settings
        var buckets: [Range<Int>] = []
        var bucketOfSlot = [Int](repeating: 0, count: parameters.count)
        var slotsPerBucket: [Int] = []
        var upper = parameters.last.map { $0.offset + $0.count } ?? 0
        var lower = upper, slots = 0
        for (index, slot) in parameters.enumerated().reversed() {
            precondition(slot.offset + slot.count == lower, "parameters are contiguous, in order")
            lower = slot.offset
            bucketOfSlot[index] = buckets.count
            slots += 1
            if (upper - lower) * MemoryLayout<Float>.stride >= settings.bucketBytes || index == 0 {
                buckets.append(lower..<upper)
                slotsPerBucket.append(slots)
                upper = lower
                slots = 0
            }
        }
        self.buckets = buckets
        self.bucketOfSlot = bucketOfSlot
        self.slotsPerBucket = slotsPerBucket
    }

    /// Prepares to reduce `buffer` (every slot not yet final).
    public func begin(_ buffer: FlatBuffer) {
        precondition(requests.isEmpty, "finish() the previous reduction first")
        self.buffer = buffer
        waiting = slotsPerBucket
        started = 0
    }

    /// Parameter `slot`'s values in the buffer are final. Under `.overlap`, starts every
    /// bucket whose turn has come and whose parameters are all final.
    public func ready(slot: Int) {
        waiting[bucketOfSlot[slot]] -= 1
        guard settings.schedule == .overlap else { return }
        while started < buckets.count && waiting[started] == 0 { start(started); started += 1 }
    }

    /// Lets the started buckets advance.
    public func progress() {
        guard communicator.size > 1, !requests.isEmpty else { return }
        Communicator.progress(&requests)
    }

    /// Starts the buckets not yet started, waits for all, then scales by 1/ranks.
    public func finish() {
        guard let buffer else { preconditionFailure("begin() first") }
        while started < buckets.count { start(started); started += 1 }
        communicator.complete(&requests)
        requests.removeAll(keepingCapacity: true)
        if communicator.size > 1 {
            let scale = 1 / Float(communicator.size), d = buffer.data
            for i in 0..<buffer.count { d[i] *= scale }
        }
        self.buffer = nil
    }

    private func start(_ bucket: Int) {
        guard communicator.size > 1, let buffer else { return }
        let r = buckets[bucket]
        requests.append(communicator.startAllreduceSum(buffer.data + r.lowerBound, count: r.count))
    }
}
