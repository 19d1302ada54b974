/// A fixed-size float32 buffer; the model's parameters, gradients, optimizer state and
/// SAM's scratch vectors are each one of these, so an allreduce, a perturbation or an
/// update is one pass over memory.
///
/// Sendable unchecked: a buffer belongs to one rank's step, which touches it from one thread
/// at a time (a pass hands it on, it does not share it).
public final class FlatBuffer: @unchecked Sendable {
    public let count: Int
    public let data: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        data = .allocate(capacity: max(count, 1))
        data.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { data.deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: data, count: count) }
    public var array: [Float] { Array(buffer) }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    public func zero() { data.update(repeating: 0, count: count) }

    public func copy(from other: FlatBuffer) {
        precondition(other.count == count)
        data.update(from: other.data, count: count)
    }

    public func copy(from values: [Float]) {
        precondition(values.count == count)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }
}
