/// A float32 tensor: a shape and a contiguous, row-major buffer that it owns.
///
/// Layers keep their activations in `Tensor`s that they reuse from step to step
/// (`resize` only reallocates when the element count grows), so a training step
/// allocates nothing once the first batch has passed.
public final class Tensor {
    public private(set) var shape: [Int]
    public private(set) var count: Int
    public private(set) var data: UnsafeMutablePointer<Float>
    private var capacity: Int

    public init(shape: [Int]) {
        self.shape = shape
        count = shape.reduce(1, *)
        capacity = max(count, 1)
        data = .allocate(capacity: capacity)
        data.initialize(repeating: 0, count: capacity)
    }

    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        precondition(values.count == count, "values do not fit shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { data.deallocate() }

    /// Gives the tensor a new shape; contents are unspecified unless the count is unchanged.
    public func resize(_ newShape: [Int]) {
        let n = newShape.reduce(1, *)
        if n > capacity {
            data.deallocate()
            capacity = n
            data = .allocate(capacity: capacity)
            data.initialize(repeating: 0, count: capacity)
        }
        shape = newShape
        count = n
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: data, count: count) }
    public var array: [Float] { Array(buffer) }

    public func zero() { data.update(repeating: 0, count: count) }

    /// self = a + b, element by element (a residual add and its gradient); all three one size.
    public func setSum(_ a: Tensor, _ b: Tensor, parallelism: Parallelism = .serial) {
        precondition(a.count == b.count && count == a.count, "sum of tensors of different sizes")
        let (x, y, z) = (a.data, b.data, data)
        parallelism.forEachPart(count, grain: Parallelism.elementGrain) { part, _ in
            VectorKernels.active.add(x + part.lowerBound, y + part.lowerBound, z + part.lowerBound, part.count)
        }
    }

    public func copy(from other: Tensor) {
        resize(other.shape)
        data.update(from: other.data, count: count)
    }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }
}
