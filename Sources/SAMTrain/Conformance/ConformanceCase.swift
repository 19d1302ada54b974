import Foundation

/// One golden conformance case (`../shared/vectors/README.md`), read generically: the model,
/// parameters, data, loss, optimizer and SAM settings all come from the file.
public struct ConformanceCase {
    public enum LayerSpec: Equatable { case linear(inputs: Int, outputs: Int), relu }

    public var name: String
    public var layers: [LayerSpec]
    public var parameterOrder: [String]
    /// Initial parameters by name, flattened row-major.
    public var parameters: [String: [Double]]
    public var inputs: [[Double]]
    public var labels: [Int32]
    public var labelSmoothing: Float
    public var optimizer: OptimizerKind
    public var learningRate: Float
    public var sam: SAMConfiguration
    public var m: Int
    public var weightDecay: Float
    public var steps: [Step]

    /// What step t recorded: scalars and vectors (by parameter name, flattened) per shard.
    public struct Step {
        public var loss: Double?
        public var shards: [[String: Recorded]]
        public var updateDirection: [String: [Double]]?
        public var optimizerState: [String: [String: [Double]]]
        public var parametersAfter: [String: [Double]]?
        /// Schema 2: ‖u‖ before clipping, and whether clipping scaled u.
        public var updateDirectionNorm: Double?
        public var clipped: Bool?
    }

    public enum Recorded {
        case scalar(Double)
        case vector([String: [Double]])
        /// A short list of numbers (schema 2's `example_range`).
        case list([Double])
    }

    /// Bounds on what a vector file may ask for: small models, a few steps.
    public static let maximumWidth = 1 << 16
    public static let maximumParameters = 1 << 24
    public static let maximumSteps = 10_000

    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw SAMTrainError("\(path): cannot read the file") }
        try self.init(data: data, source: path)
    }

    /// Parses and validates a vector file's contents; `path` names it in errors. Every count
    /// is checked against its range and against the others (layer widths chain, rows have
    /// the first layer's width, labels are classes of the last layer) before anything runs.
    public init(data: Data, source path: String) throws {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SAMTrainError("\(path): not a JSON object")
        }
        func fail(_ what: String) -> SAMTrainError { SAMTrainError("\(path): \(what)") }
        func number(_ v: Any?, _ what: String) throws -> Double {
            if let d = v as? Double { return d }
            if let i = v as? Int { return Double(i) }
            if let n = v as? NSNumber { return n.doubleValue }
            throw fail("\(what) is not a number")
        }
        func flatten(_ v: Any?, _ what: String) throws -> [Double] {
            if let list = v as? [Any] { return try list.flatMap { try flatten($0, what) } }
            return [try number(v, what)]
        }
        func vectors(_ v: Any?, _ what: String) throws -> [String: [Double]] {
            guard let map = v as? [String: Any] else { throw fail("\(what) is not an object of tensors") }
            return try map.mapValues { try flatten($0, what) }
        }

        /// A whole number in `range`, named `what` in the error.
        func integer(_ v: Any?, _ what: String, in range: ClosedRange<Int>) throws -> Int {
            guard let i = CheckedSize.integer(v, in: range) else {
                throw fail("\(what) is \(v.map { "\($0)" } ?? "missing"); it must be a whole number in \(CheckedSize.describe(range))")
            }
            return i
        }
        func finite(_ v: Any?, _ what: String) throws -> Double {
            let d = try number(v, what)
            guard d.isFinite else { throw fail("\(what) is \(d); it must be finite") }
            return d
        }

        name = root["name"] as? String ?? (path as NSString).lastPathComponent
        guard let model = root["model"] as? [String: Any], let layerList = model["layers"] as? [[String: Any]], !layerList.isEmpty else {
            throw fail("model.layers is missing")
        }
        let width = 1...ConformanceCase.maximumWidth
        var parameterCount = 0
        layers = try layerList.enumerated().map { index, l in
            switch l["type"] as? String {
            case "linear":
                let inputs = try integer(l["in"], "model.layers[\(index)].in", in: width)
                let outputs = try integer(l["out"], "model.layers[\(index)].out", in: width)
                parameterCount += inputs * outputs + outputs
                guard parameterCount <= ConformanceCase.maximumParameters else {
                    throw fail("model.layers[\(index)]: the model passes \(ConformanceCase.maximumParameters) parameters")
                }
                return .linear(inputs: inputs, outputs: outputs)
            case "relu": return .relu
            default: throw fail("unknown layer type \(l["type"] ?? "nil")")
            }
        }
        // Widths chain: each linear layer takes the previous one's outputs.
        var widths: [(inputs: Int, outputs: Int)] = []
        for case let .linear(inputs, outputs) in layers { widths.append((inputs, outputs)) }
        guard let first = widths.first, let classes = widths.last?.outputs else { throw fail("model.layers has no linear layer") }
        for (i, pair) in zip(widths, widths.dropFirst()).enumerated() where pair.0.outputs != pair.1.inputs {
            throw fail("linear layer \(i + 2) takes \(pair.1.inputs) inputs but linear layer \(i + 1) gives \(pair.0.outputs)")
        }
        guard classes >= 2 else { throw fail("the last linear layer has \(classes) output(s); a classifier needs at least 2") }
        guard let order = root["param_order"] as? [String] else { throw fail("param_order is missing") }
        parameterOrder = order
        parameters = try vectors(root["params"], "params")

        guard let data = root["data"] as? [String: Any], let xs = data["x"] as? [Any], let ys = data["y"] as? [Any] else {
            throw fail("data.x / data.y are missing")
        }
        inputs = try xs.map { try flatten($0, "data.x") }
        guard inputs.count == ys.count, !inputs.isEmpty else { throw fail("data.x and data.y differ in length (or are empty)") }
        for (row, x) in inputs.enumerated() where x.count != first.inputs {
            throw fail("data.x row \(row) has \(x.count) values; the first linear layer takes \(first.inputs)")
        }
        labels = try ys.enumerated().map { Int32(try integer($1, "data.y[\($0)]", in: 0...(classes - 1))) }

        let loss = root["loss"] as? [String: Any] ?? [:]
        guard (loss["type"] as? String ?? "cross_entropy") == "cross_entropy" else { throw fail("unknown loss \(loss["type"] ?? "")") }
        labelSmoothing = Float(try number(loss["label_smoothing"] ?? 0, "loss.label_smoothing"))

        guard let opt = root["optimizer"] as? [String: Any] else { throw fail("optimizer is missing") }
        learningRate = Float(try finite(opt["lr"], "optimizer.lr"))
        weightDecay = Float(try finite(opt["weight_decay"] ?? 0, "optimizer.weight_decay"))
        switch opt["type"] as? String {
        case "sgd":
            optimizer = .sgd(momentum: Float(try number(opt["momentum"] ?? 0, "optimizer.momentum")),
                             nesterov: opt["nesterov"] as? Bool ?? false, weightDecay: weightDecay)
        case "adamw":
            let betas = try flatten(opt["betas"] ?? [0.9, 0.999], "optimizer.betas")
            guard betas.count == 2, betas.allSatisfy({ $0 >= 0 && $0 < 1 }) else {
                throw fail("optimizer.betas is \(betas); it must be two numbers in [0, 1)")
            }
            optimizer = .adamW(beta1: Float(betas[0]), beta2: Float(betas[1]),
                               eps: Float(try number(opt["eps"] ?? 1e-8, "optimizer.eps")), weightDecay: weightDecay)
        default:
            throw fail("unknown optimizer \(opt["type"] ?? "nil")")
        }

        let stepCount = try integer(root["num_steps"], "num_steps", in: 0...ConformanceCase.maximumSteps)
        guard let s = root["sam"] as? [String: Any] else { throw fail("sam is missing") }
        // The shared keys here; the variant reads its own (`VariantOptions.read(vector:)`).
        let vector = VectorSettings(s, source: path, steps: stepCount)
        var c = SAMConfiguration()
        let variantName = try vector.string("variant") ?? ""
        guard let variant = VariantName(argument: variantName) else {
            throw fail("unknown sam.variant \(variantName); samtrain has \(VariantRegistry.names.joined(separator: ", "))")
        }
        c.variant = variant
        c.rho = try vector.float("rho")
        c.normEps = try vector.number("norm_eps") ?? 1e-12
        c.weightDecayInAscent = try vector.bool("weight_decay_in_ascent") ?? false
        c.clipGradNorm = try vector.float("clip_grad_norm")
        var options = c.options
        try options.read(vector: vector)
        c.variants.replace(options)
        m = try vector.integer("m", in: 1...inputs.count) ?? inputs.count
        do { try c.validate() } catch let e as SAMTrainError { throw fail("sam: \(e.message)") }
        sam = c

        let stepList = root["steps"] as? [[String: Any]] ?? []
        guard stepList.count >= stepCount else { throw fail("num_steps is \(stepCount) but \(stepList.count) steps are recorded") }
        steps = try stepList.prefix(stepCount).map { st in
            let shards = try (st["shards"] as? [[String: Any]] ?? []).map { shard in
                try shard.mapValues { v -> Recorded in
                    if v is [String: Any] { return .vector(try vectors(v, "shard vector")) }
                    if v is [Any] { return .list(try flatten(v, "shard list")) }
                    return .scalar(try number(v, "shard value"))
                }
            }
            var state: [String: [String: [Double]]] = [:]
            for (k, v) in st["optimizer_state_after"] as? [String: Any] ?? [:] { state[k] = try vectors(v, "optimizer_state_after.\(k)") }
            return Step(loss: try st["loss"].map { try number($0, "loss") },
                        shards: shards,
                        updateDirection: try st["update_direction"].map { try vectors($0, "update_direction") },
                        optimizerState: state,
                        parametersAfter: try st["params_after"].map { try vectors($0, "params_after") },
                        updateDirectionNorm: try st["update_direction_norm"].map { try number($0, "update_direction_norm") },
                        clipped: st["clipped"] as? Bool)
        }
    }
}
