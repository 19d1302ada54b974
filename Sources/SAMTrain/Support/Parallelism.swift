import CKernels
import Dispatch

/// The threads a rank's own kernels use (`--threads`) and how work is cut among them: into at
/// most `threads` contiguous parts of equal size, fixed by the count of items and threads alone,
/// each part's work done as the one-thread code does it. A sum over parts (a weight gradient
/// over images) is added part by part in part order. So the same thread count gives the same
/// bits on every run (docs/algorithms.md §12.4), and one thread is the plain serial code.
///
/// A pass carries it (`PassMode.parallelism`, set by the model from `Sequential.parallelism`);
/// layers cut their batch, channels or elements with `forEachPart`. OpenBLAS runs one thread
/// under it: samtrain cuts the GEMMs it calls as it cuts its own loops.
public struct Parallelism: Sendable, Equatable, CustomStringConvertible {
    public let threads: Int

    public init(threads: Int) {
        precondition(threads >= 1, "a pass runs on at least one thread")
        self.threads = threads
    }

    public static let serial = Parallelism(threads: 1)

    public var description: String { "\(threads) thread\(threads == 1 ? "" : "s")" }

    /// How many parts `count` items are cut into: one per thread, never an empty one, and
    /// none of fewer than `grain` items (work too small to be worth a thread's wake-up).
    public func partCount(_ count: Int, grain: Int = 1) -> Int { max(1, min(threads, count / max(1, grain))) }

    /// Part `index` of `count` items cut into `parts`: the first `count % parts` parts hold one
    /// item more.
    public static func part(_ index: Int, of parts: Int, count: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let start = index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }

    /// Items of elementwise work below which a part is not worth a thread.
    public static let elementGrain = 1 << 14

    /// Runs `body(items, part)` on each part of 0..<count, the parts in parallel, and returns
    /// when all are done. Worker threads flush subnormals as the main thread does (§6.7).
    public func forEachPart(_ count: Int, grain: Int = 1, _ body: (Range<Int>, Int) -> Void) {
        let parts = partCount(count, grain: grain)
        guard parts > 1 else {
            if count > 0 { body(0..<count, 0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { index in
                samtrain_flush_subnormals()
                shared.value(Parallelism.part(index, of: parts, count: count), index)
            }
        }
    }
}

/// A value handed to the parts of one `forEachPart` call. The parts touch disjoint memory
/// (their own items, their own scratch), which the type system cannot see through pointers.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
