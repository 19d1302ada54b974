import Foundation

/// Weights from a PyTorch `state_dict` (docs/algorithms.md §7.9): a safetensors file whose
/// tensor names are the model's (samtrain names every parameter and BatchNorm statistic as the
/// PyTorch module it follows does), as `safetensors.torch.save_file(module.state_dict(), FILE)`
/// writes it. What `--init` starts a run from and what `samtrain eval --model` evaluates.
///
/// Strict, as `load_state_dict(strict=True)`: every parameter and running statistic of the
/// model must be in the file with its shape, and every tensor of the file must be the model's.
/// The exceptions are named: `num_batches_tracked` (samtrain's BatchNorm has no counter), a
/// samtrain checkpoint's `optimizer.*` and `samtrain.*` state, tensors matched by the exclude
/// pattern, and, when allowed, a classifier head whose class count differs.
public struct StateDict {
    /// The file's tensors by name.
    public let tensors: [String: NumericArray]
    public let source: String

    public init(tensors: [NumericArray], source: String) {
        var byName: [String: NumericArray] = [:]
        for t in tensors { byName[t.name] = t }
        self.tensors = byName
        self.source = source
    }

    /// Decodes a safetensors file's bytes (any float dtype; duplicate names refused).
    public init(bytes: [UInt8], source: String) throws {
        self.init(tensors: try SafeTensors.decodeArrays(bytes, source: source).arrays, source: source)
    }

    /// What a load did, tensor by tensor: rank 0 prints it.
    public struct Report: Sendable {
        public var loaded: [String] = []
        /// Model tensors initialized fresh, each with why.
        public var fresh: [(name: String, why: String)] = []
        /// File tensors not used, each with why.
        public var ignored: [(name: String, why: String)] = []

        /// "loaded 62 tensors; started fresh: fc.weight, fc.bias (…); ignored: …"
        public var lines: [String] {
            var out = ["loaded \(loaded.count) tensor(s)"]
            for (why, names) in Self.grouped(fresh) { out.append("started fresh (\(why)): \(Self.list(names))") }
            for (why, names) in Self.grouped(ignored) {
                // A checkpoint's state is many tensors of two prefixes: the count says enough.
                let which = why == Self.checkpointState ? "\(names.count) tensor(s) optimizer.*, samtrain.*" : Self.list(names)
                out.append("ignored (\(why)): \(which)")
            }
            return out
        }

        static let checkpointState = "a samtrain checkpoint's optimizer and run state; the optimizer starts fresh"

        static func grouped(_ items: [(name: String, why: String)]) -> [(String, [String])] {
            var order: [String] = [], by: [String: [String]] = [:]
            for (name, why) in items {
                if by[why] == nil { order.append(why) }
                by[why, default: []].append(name)
            }
            return order.map { ($0, by[$0]!) }
        }

        static func list(_ names: [String], limit: Int = 12) -> String {
            names.count <= limit ? names.joined(separator: ", ")
                : names.prefix(limit).joined(separator: ", ") + ", … (\(names.count) in all)"
        }
    }

    /// The prefix of the model's classifier head ("fc.", "linear.", "9."): the module of the
    /// last parameter registered, which every samtrain model registers last.
    static func headPrefix(of model: Sequential) -> String? {
        guard let last = model.store.parameters.last?.name, let dot = last.lastIndex(of: ".") else { return nil }
        return String(last[...dot])
    }

    /// Loads the file into `model`'s (`--model modelName`'s) parameters and buffers. Tensors that start fresh keep the
    /// values `model` holds (its seeded initialization). `exclude` matches (anywhere in the
    /// name) tensors that start fresh or are ignored; with `freshHead`, a head whose class
    /// count differs from the model's starts fresh too (fine-tuning), else it is an error.
    /// Every problem is collected into one error.
    public func load(into model: Sequential, named modelName: String, exclude: String? = nil, freshHead: Bool) throws -> Report {
        let pattern = try exclude.map(Self.pattern)
        func excluded(_ name: String) -> Bool { pattern.map { name.contains($0) } ?? false }
        let store = model.store
        let head = Self.headPrefix(of: model)
        var report = Report()
        var missing: [String] = [], wrongShape: [String] = [], wrongType: [String] = []
        var used = Set<String>()
        let slots = store.parameters.map { ($0, store.values.data) } + store.bufferSlots.map { ($0, store.buffers.data) }

        // Nothing in common: the file is another model's (or not a state_dict at all).
        if !slots.contains(where: { tensors[$0.0.name] != nil }) {
            let theirs = tensors.keys.sorted().prefix(4).joined(separator: ", ")
            throw SAMTrainError("\(source): holds none of --model \(modelName)'s tensors (it needs \(slots.prefix(3).map(\.0.name).joined(separator: ", ")), …; the file has \(tensors.isEmpty ? "no tensors" : theirs + (tensors.count > 4 ? ", …" : ""))): it was saved from another model")
        }
        for (slot, base) in slots {
            if excluded(slot.name) {
                report.fresh.append((slot.name, "--init-exclude"))
                used.insert(slot.name)
                continue
            }
            guard let t = tensors[slot.name] else { missing.append(slot.name); continue }
            used.insert(slot.name)
            guard t.type.isFloat else {
                wrongType.append("\(slot.name) is \(t.type), the model needs floats")
                continue
            }
            guard t.shape == slot.shape else {
                // The classifier head of another class count: only its first (class) axis differs.
                if freshHead, let head, slot.name.hasPrefix(head), t.shape.count == slot.shape.count,
                   t.shape.dropFirst() == slot.shape.dropFirst() {
                    report.fresh.append((slot.name, "classifier head: \(t.shape[0]) classes in the file, \(slot.shape[0]) in the data"))
                    continue
                }
                wrongShape.append("\(slot.name) is \(Self.text(t.shape)) in the file, \(Self.text(slot.shape)) in the model")
                continue
            }
            let values = t.floats()!
            values.withUnsafeBufferPointer { (base + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
            report.loaded.append(slot.name)
        }
        var unexpected: [String] = []
        for name in tensors.keys.sorted() where !used.contains(name) {
            if name.hasSuffix("num_batches_tracked") {
                report.ignored.append((name, "BatchNorm's step counter; samtrain keeps none"))
            } else if name.hasPrefix("optimizer.") || name.hasPrefix("samtrain.") {
                report.ignored.append((name, Report.checkpointState))
            } else if excluded(name) {
                report.ignored.append((name, "--init-exclude"))
            } else {
                unexpected.append(name)
            }
        }
        var problems: [String] = []
        if !missing.isEmpty { problems.append("missing \(missing.count) tensor(s) of the model: \(Report.list(missing))") }
        if !wrongShape.isEmpty {
            let hint = freshHead ? "" : " (the data's class count must be the head's)"
            problems.append("\(wrongShape.count) shape mismatch(es)\(hint): \(Report.list(wrongShape, limit: 6))")
        }
        if !wrongType.isEmpty { problems.append("\(wrongType.count) integer tensor(s) where floats are needed: \(Report.list(wrongType, limit: 6))") }
        if !unexpected.isEmpty { problems.append("\(unexpected.count) tensor(s) the model does not have: \(Report.list(unexpected))") }
        if !problems.isEmpty, let depth = Self.depthDifference(file: Array(tensors.keys), model: slots.map(\.0.name)) {
            problems.insert(depth, at: 0)
        }
        if !problems.isEmpty {
            let exclusion = missing.isEmpty && unexpected.isEmpty ? "" : "; --init-exclude REGEX starts matching tensors fresh"
            throw SAMTrainError("\(source): does not fit --model \(modelName): " + problems.joined(separator: "; ") + exclusion)
        }
        return report
    }

    /// "the file has 6 blocks.K modules, the model 12": the depth a file was saved at, when it
    /// differs (a repeated module is a name component that is a number, as in `blocks.6.attn`).
    static func depthDifference(file: [String], model: [String]) -> String? {
        func counts(_ names: [String]) -> [String: Set<Int>] {
            var out: [String: Set<Int>] = [:]
            for name in names {
                let parts = name.split(separator: ".")
                guard let i = parts.firstIndex(where: { Int($0) != nil }), i > 0 else { continue }
                out[parts[..<i].joined(separator: "."), default: []].insert(Int(parts[i])!)
            }
            return out
        }
        let theirs = counts(file), ours = counts(model)
        for prefix in ours.keys.sorted() {
            if let n = theirs[prefix]?.count, n != ours[prefix]!.count {
                return "the file has \(n) \(prefix).K modules, the model \(ours[prefix]!.count) (saved at another depth?)"
            }
        }
        return nil
    }

    /// `--init-exclude`'s pattern, or one clear error.
    public static func pattern(_ text: String) throws -> Regex<AnyRegexOutput> {
        do { return try Regex(text) } catch {
            throw SAMTrainError("--init-exclude \(text): not a valid regular expression (\(error))")
        }
    }

    static func text(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
}
