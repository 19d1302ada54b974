import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// One MPI communicator, and everything samtrain asks of MPI: rank and size, in-place
/// allreduce of float buffers, broadcast, barrier, sub-communicators, and agreement on
/// errors so that no rank is ever left waiting in a collective that another rank skipped.
///
/// Without `mpirun` it is a world of one process.
public final class Communicator {
    public let rank: Int
    public let size: Int
    let handle: MPI_Comm
    /// The run's watchdog (nil: none); a sub-communicator split from this one shares it.
    public private(set) var watchdog: Watchdog?

    private init(handle: MPI_Comm) {
        self.handle = handle
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(handle, &r)
        MPI_Comm_size(handle, &s)
        rank = Int(r)
        size = Int(s)
    }

    /// Initializes MPI (once) and returns the world communicator.
    public static func world() -> Communicator {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var provided: Int32 = 0
            MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided)
        }
        return Communicator(handle: samtrain_comm_world())
    }

    /// Finalizes MPI; call once before a normal exit.
    public static func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized != 0 && finalized == 0 { MPI_Finalize() }
    }

    public var isCoordinator: Bool { rank == 0 }

    /// From now on, every collective of this communicator (and of those split from it) is
    /// watched by `watchdog`: one that does not complete in time ends the job.
    public func watch(with watchdog: Watchdog) {
        self.watchdog = watchdog
    }

    /// Runs a blocking collective, marked as waiting for the watchdog.
    @inline(__always)
    func waiting<T>(_ body: () -> T) -> T {
        guard let watchdog else { return body() }
        return watchdog.waiting(body)
    }

    // MARK: Collectives

    /// In-place sum over all ranks.
    public func allreduceSum(_ data: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1, count > 0 else { return }
        _ = waiting { MPI_Allreduce(samtrain_in_place(), data, Int32(count), samtrain_float(), samtrain_op_sum(), handle) }
    }

    /// In-place mean over all ranks: the sum, then one scaling pass.
    public func allreduceMean(_ data: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1, count > 0 else { return }
        allreduceSum(data, count: count)
        let scale = 1 / Float(size)
        for i in 0..<count { data[i] *= scale }
    }

    public func allreduceMean(_ buffer: FlatBuffer) { allreduceMean(buffer.data, count: buffer.count) }
    public func allreduceSum(_ buffer: FlatBuffer) { allreduceSum(buffer.data, count: buffer.count) }

    /// Starts an in-place sum over all ranks and returns at once; `complete(_:)` or
    /// `progress(_:)` finish it. The buffer must stay untouched until then.
    public func startAllreduceSum(_ data: UnsafeMutablePointer<Float>, count: Int) -> MPI_Request? {
        var request: MPI_Request? = samtrain_request_null()
        samtrain_iallreduce_sum_float(data, Int32(count), handle, &request)
        return request
    }

    /// Lets outstanding requests advance (Open MPI moves a non-blocking collective on only
    /// inside MPI calls); true when all have completed (they are then MPI_REQUEST_NULL).
    @discardableResult
    public static func progress(_ requests: inout [MPI_Request?]) -> Bool {
        guard !requests.isEmpty else { return true }
        var done: Int32 = 0
        requests.withUnsafeMutableBufferPointer { p in
            _ = samtrain_testall(Int32(p.count), p.baseAddress, &done)
        }
        return done != 0
    }

    /// Waits until every request has completed.
    public func complete(_ requests: inout [MPI_Request?]) {
        guard !requests.isEmpty else { return }
        requests.withUnsafeMutableBufferPointer { p in
            _ = waiting { samtrain_waitall(Int32(p.count), p.baseAddress) }
        }
    }

    /// Sum of doubles over all ranks (metrics: loss sums, correct counts).
    public func allreduceSum(_ values: [Double]) -> [Double] {
        guard size > 1, !values.isEmpty else { return values }
        var v = values
        v.withUnsafeMutableBufferPointer { p in
            _ = waiting { MPI_Allreduce(samtrain_in_place(), p.baseAddress, Int32(p.count), samtrain_double(), samtrain_op_sum(), handle) }
        }
        return v
    }

    /// Element-wise maximum of doubles over all ranks (the slowest rank's timings).
    public func allreduceMaxDoubles(_ values: [Double]) -> [Double] {
        guard size > 1, !values.isEmpty else { return values }
        var v = values
        v.withUnsafeMutableBufferPointer { p in
            _ = waiting { MPI_Allreduce(samtrain_in_place(), p.baseAddress, Int32(p.count), samtrain_double(), samtrain_op_max(), handle) }
        }
        return v
    }

    public func allreduceMax(_ value: Int64) -> Int64 {
        guard size > 1 else { return value }
        var v = value
        _ = waiting { MPI_Allreduce(samtrain_in_place(), &v, 1, samtrain_int64(), samtrain_op_max(), handle) }
        return v
    }

    public func allreduceMin(_ value: Int64) -> Int64 {
        guard size > 1 else { return value }
        var v = value
        _ = waiting { MPI_Allreduce(samtrain_in_place(), &v, 1, samtrain_int64(), samtrain_op_min(), handle) }
        return v
    }

    public func broadcast(_ data: UnsafeMutablePointer<Float>, count: Int, root: Int = 0) {
        guard size > 1, count > 0 else { return }
        _ = waiting { MPI_Bcast(data, Int32(count), samtrain_float(), Int32(root), handle) }
    }

    public func broadcast(_ buffer: FlatBuffer, root: Int = 0) { broadcast(buffer.data, count: buffer.count, root: root) }

    /// Broadcasts raw bytes (e.g. a checkpoint or a string) from `root`; every rank returns them.
    public func broadcast(bytes: [UInt8], root: Int = 0) -> [UInt8] {
        guard size > 1 else { return bytes }
        var n = Int64(rank == root ? bytes.count : 0)
        _ = waiting { MPI_Bcast(&n, 1, samtrain_int64(), Int32(root), handle) }
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(n))
        out.withUnsafeMutableBytes { p in
            _ = waiting { MPI_Bcast(p.baseAddress, Int32(n), samtrain_byte(), Int32(root), handle) }
        }
        return out
    }

    /// Gathers `values` (the same count on every rank) on `root`: rank r's at [r·n, (r+1)·n).
    /// Other ranks get an empty array.
    public func gather(_ values: [Float], root: Int = 0) -> [Float] {
        guard size > 1 else { return values }
        let n = values.count
        var all = [Float](repeating: 0, count: rank == root ? n * size : 0)
        values.withUnsafeBufferPointer { mine in
            all.withUnsafeMutableBufferPointer { a in
                _ = waiting { MPI_Gather(mine.baseAddress, Int32(n), samtrain_float(), a.baseAddress, Int32(n), samtrain_float(), Int32(root), handle) }
            }
        }
        return all
    }

    /// Gathers one UInt64 from every rank (digest comparison).
    public func allgather(_ value: UInt64) -> [UInt64] {
        guard size > 1 else { return [value] }
        var mine = value
        var all = [UInt64](repeating: 0, count: size)
        all.withUnsafeMutableBufferPointer { p in
            _ = waiting { MPI_Allgather(&mine, 1, samtrain_uint64(), p.baseAddress, 1, samtrain_uint64(), handle) }
        }
        return all
    }

    /// Gathers one short string from every rank (host names).
    public func allgather(_ string: String, maxBytes: Int = 256) -> [String] {
        var mine = [UInt8](string.utf8.prefix(maxBytes - 1))
        mine += [UInt8](repeating: 0, count: maxBytes - mine.count)
        guard size > 1 else { return [string] }
        var all = [UInt8](repeating: 0, count: maxBytes * size)
        mine.withUnsafeMutableBytes { m in
            all.withUnsafeMutableBytes { a in
                _ = waiting { MPI_Allgather(m.baseAddress, Int32(maxBytes), samtrain_byte(), a.baseAddress, Int32(maxBytes), samtrain_byte(), handle) }
            }
        }
        return (0..<size).map { r in
            let slice = all[(r * maxBytes)..<((r + 1) * maxBytes)]
            return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    public func barrier() {
        guard size > 1 else { return }
        _ = waiting { MPI_Barrier(handle) }
    }

    /// Splits into sub-communicators: ranks with the same `color` form one, ordered by rank.
    public func split(color: Int) -> Communicator {
        var sub: MPI_Comm? = samtrain_comm_null()
        MPI_Comm_split(handle, Int32(color), Int32(rank), &sub)
        let child = Communicator(handle: sub!)
        child.watchdog = watchdog
        return child
    }

    /// The host this rank runs on.
    public static var processorName: String {
        var buffer = [CChar](repeating: 0, count: Int(samtrain_max_processor_name()) + 1)
        var length: Int32 = 0
        MPI_Get_processor_name(&buffer, &length)
        return String(nulTerminated: buffer)
    }

    /// Ends every rank of the job at once: for an error only this rank knows about at a
    /// point where the others may already wait in a collective.
    public func abort(code: Int32) -> Never {
        MPI_Abort(handle, code)
        exit(code)
    }

    // MARK: Error agreement

    /// Runs `body` on every rank, then agrees on the outcome: if any rank threw, every
    /// rank throws `AgreedFailure` and the lowest failing rank carries the message.
    /// Each stage that can fail on one rank alone (reading files, validating) goes
    /// through here, so that a bad file on one rank never leaves the others in a
    /// collective.
    public func agree<T>(_ stage: String = "", _ body: () throws -> T) throws -> T {
        var result: T?
        var message: String?
        do { result = try body() } catch let error as SAMTrainError {
            message = error.message
        } catch {
            message = "\(error)"
        }
        let failing = allreduceMin(message == nil ? Int64.max : Int64(rank))
        if failing != Int64.max {
            throw AgreedFailure(rank: Int(failing), message: failing == Int64(rank) ? message : nil)
        }
        return result!
    }
}

/// A failure that every rank has agreed on; only the rank that met it holds the message.
public struct AgreedFailure: Error {
    public let rank: Int
    public let message: String?

    public init(rank: Int, message: String?) {
        self.rank = rank
        self.message = message
    }

    /// An error that every rank met identically (it followed from shared values): rank 0
    /// reports it.
    public static func everywhere(_ message: String, world: Communicator) -> AgreedFailure {
        AgreedFailure(rank: 0, message: world.isCoordinator ? message : nil)
    }
}
