import Foundation

/// A training checkpoint: parameters, BatchNorm running statistics, optimizer state and
/// the run's position, as a safetensors file that Python's `safetensors` reads.
///
/// Tensor names: parameters and buffers under their PyTorch names (`0.weight`,
/// `1.running_mean`), optimizer state as `optimizer.<state>.<parameter name>`.
public struct Checkpoint {
    public static let formatVersion = "1"

    /// The largest step count a checkpoint may record: far beyond any run, far below where a
    /// step counter would overflow.
    public static let maximumStep = 1 << 40

    public var file: SafeTensors.File

    public init(file: SafeTensors.File) { self.file = file }

    /// Decodes a checkpoint file's bytes and validates its metadata as a whole before any of
    /// it is used; `source` names the file in errors.
    public init(bytes: [UInt8], source: String) throws {
        self.init(file: try SafeTensors.decode(bytes, source: source))
        try validateMetadata(source: source)
    }

    /// The format and version, and every step count in range (0…2⁴⁰).
    public func validateMetadata(source: String) throws {
        func fail(_ why: String) -> SAMTrainError { SAMTrainError("\(source): not a usable samtrain checkpoint: \(why)") }
        guard metadata["format"] == "samtrain-checkpoint" else {
            throw fail("metadata format is \(metadata["format"].map { "\"\($0)\"" } ?? "missing"), expected \"samtrain-checkpoint\"")
        }
        guard metadata["format_version"] == Checkpoint.formatVersion else {
            throw fail("metadata format_version is \(metadata["format_version"] ?? "missing"); this samtrain reads version \(Checkpoint.formatVersion)")
        }
        _ = try count("optimizer_step", source: source, required: true)
        for key in ["step", "epoch", "step_in_epoch"] { _ = try count(key, source: source, required: false) }
        for key in ["steps_per_epoch", "world_size"] {
            if let n = try count(key, source: source, required: false), n < 1 {
                throw fail("metadata \(key) is \(n), outside 1…\(Checkpoint.maximumStep)")
            }
        }
        if let problem = EpochProgress.problem(in: metadata) { throw fail(problem) }
    }

    /// A metadata count in 0…`maximumStep` (nil when absent and not required).
    public func count(_ key: String, source: String, required: Bool) throws -> Int? {
        guard let text = metadata[key] else {
            if required { throw SAMTrainError("\(source): not a usable samtrain checkpoint: metadata has no \(key)") }
            return nil
        }
        guard let n = Int(text), n >= 0, n <= Checkpoint.maximumStep else {
            throw SAMTrainError("\(source): not a usable samtrain checkpoint: metadata \(key) is \"\(text.prefix(40))\", outside 0…\(Checkpoint.maximumStep)")
        }
        return n
    }

    /// The prefix of rank r's own BatchNorm statistics (`samtrain.rank1.1.running_mean`).
    static func rankPrefix(_ r: Int) -> String { "samtrain.rank\(r)." }

    /// Captures the state of `model` and `optimizer` with the given metadata. The buffers
    /// (BatchNorm statistics) are `buffers` when given (the ranks' mean, what eval uses),
    /// else the model's; `rankBuffers[r]`, when given, are rank r's own, restored by that
    /// rank on resume so that a checkpoint taken at any step never changes the run.
    /// `rankVariantState[r]` is rank r's variant state (LookSAM's g_v per shard slot, …),
    /// stored as `samtrain.rank<r>.variant.<name>`.
    public init(model: Sequential, optimizer: Optimizer, metadata: [String: String],
                buffers: [Float]? = nil, rankBuffers: [[Float]] = [],
                rankVariantState: [[(name: String, values: [Float])]] = []) {
        var tensors: [SafeTensors.TensorEntry] = []
        let store = model.store
        for slot in store.parameters {
            tensors.append(.init(name: slot.name, shape: slot.shape,
                                 values: Array(UnsafeBufferPointer(start: store.values.data + slot.offset, count: slot.count))))
        }
        let mean = buffers ?? store.buffers.array
        for slot in store.bufferSlots {
            tensors.append(.init(name: slot.name, shape: slot.shape, values: Array(mean[slot.offset..<(slot.offset + slot.count)])))
        }
        for (r, own) in rankBuffers.enumerated() {
            for slot in store.bufferSlots {
                tensors.append(.init(name: Checkpoint.rankPrefix(r) + slot.name, shape: slot.shape,
                                     values: Array(own[slot.offset..<(slot.offset + slot.count)])))
            }
        }
        for (r, own) in rankVariantState.enumerated() {
            for (name, values) in own {
                tensors.append(.init(name: Checkpoint.rankPrefix(r) + "variant." + name, shape: [values.count], values: values))
            }
        }
        for (stateName, buffer) in optimizer.state {
            for slot in store.parameters {
                tensors.append(.init(name: "optimizer.\(stateName).\(slot.name)", shape: slot.shape,
                                     values: Array(UnsafeBufferPointer(start: buffer.data + slot.offset, count: slot.count))))
            }
        }
        var meta = metadata
        meta["format"] = "samtrain-checkpoint"
        meta["format_version"] = Checkpoint.formatVersion
        meta["optimizer_step"] = String(optimizer.stepCount)
        file = SafeTensors.File(tensors: tensors, metadata: meta)
    }

    public var metadata: [String: String] { file.metadata }

    /// The run's settings as it recorded them (its flags by name); empty in a checkpoint that
    /// records none.
    public var settings: [String: String] {
        (metadata["settings"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: String]) ?? [:]
    }

    /// Loads the parameters, buffers and (if given) optimizer state into place, checking
    /// that every tensor the model needs is present with the model's shape.
    public func restore(into model: Sequential, optimizer: Optimizer?, source: String, rank: Int? = nil) throws {
        let store = model.store
        func load(_ name: String, shape: [Int], into pointer: UnsafeMutablePointer<Float>) throws {
            guard let t = file.tensor(name) else {
                throw SAMTrainError("\(source): checkpoint has no tensor \(name); it does not fit this model")
            }
            guard t.shape == shape else {
                throw SAMTrainError("\(source): tensor \(name) has shape \(t.shape), the model needs \(shape)")
            }
            t.values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: t.values.count) }
        }
        for slot in store.parameters { try load(slot.name, shape: slot.shape, into: store.values.data + slot.offset) }
        // A resuming rank takes its own statistics when the checkpoint holds them.
        let own = rank.map(Checkpoint.rankPrefix).flatMap { prefix in store.bufferSlots.allSatisfy { file.tensor(prefix + $0.name) != nil } ? prefix : nil }
        for slot in store.bufferSlots { try load((own ?? "") + slot.name, shape: slot.shape, into: store.buffers.data + slot.offset) }
        if let optimizer {
            for (stateName, buffer) in optimizer.state {
                for slot in store.parameters {
                    try load("optimizer.\(stateName).\(slot.name)", shape: slot.shape, into: buffer.data + slot.offset)
                }
            }
            optimizer.stepCount = try count("optimizer_step", source: source, required: true)!
        }
    }

    /// Loads rank `rank`'s variant state into `state`'s buffers (every one must be there
    /// with its size: a stateful variant resumes only from its own kind of run).
    public func restoreVariantState(_ state: [(name: String, buffer: FlatBuffer)], rank: Int, source: String) throws {
        for (name, buffer) in state {
            let key = Checkpoint.rankPrefix(rank) + "variant." + name
            guard let t = file.tensor(key) else {
                throw SAMTrainError("\(source): checkpoint has no tensor \(key); it was not made by this variant with these ranks and shards")
            }
            guard t.values.count == buffer.count else {
                throw SAMTrainError("\(source): tensor \(key) has \(t.values.count) values, the variant keeps \(buffer.count)")
            }
            t.values.withUnsafeBufferPointer { buffer.data.update(from: $0.baseAddress!, count: buffer.count) }
        }
    }

    /// Writes atomically (`AtomicFile`): a crash leaves the old file or the new one.
    public func write(to path: String) throws {
        try AtomicFile.write(SafeTensors.encode(file), to: path, what: "checkpoint")
    }

    public static func read(from path: String) throws -> Checkpoint {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SAMTrainError("\(path): cannot read checkpoint (missing or unreadable)")
        }
        return try Checkpoint(bytes: [UInt8](data), source: path)
    }
}
