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
        func fail(_ what: String) -> SAMTrainError { SAMTrainError("\(path): \(what)") }
        let file: VectorFile
        do {
            file = try JSONDecoder().decode(VectorFile.self, from: data)
        } catch let e as DecodingError {
            // The file is not JSON, or not an object: nothing to name but the file.
            if e.field.isEmpty { throw fail("not a JSON object") }
            throw fail("\(e.field) \(e.problem)")
        }
        if let repeated = JSONAsWritten(data, numbersToDepth: 0).repeatedKey {
            throw fail("\(repeated.field) is given twice (line \(repeated.line)); give each key once")
        }

        /// A whole number in `range`, named `what` in the error.
        func integer(_ v: JSONValue?, _ what: String, in range: ClosedRange<Int>) throws -> Int {
            guard let i = v?.integer(in: range) else {
                throw fail("\(what) is \(v.map { "\($0)" } ?? "missing"); it must be a whole number in \(CheckedSize.describe(range))")
            }
            return i
        }
        func finite(_ v: Double?, _ what: String) throws -> Double {
            guard let d = v else { throw fail("\(what) is not a number") }
            guard d.isFinite else { throw fail("\(what) is \(d); it must be finite") }
            return d
        }

        name = file.name?.string ?? (path as NSString).lastPathComponent
        guard let layerList = file.model?.layers, !layerList.isEmpty else { throw fail("model.layers is missing") }
        let width = 1...ConformanceCase.maximumWidth
        var parameterCount = 0
        layers = try layerList.enumerated().map { index, l in
            switch l.type?.string {
            case "linear":
                let inputs = try integer(l.inputs, "model.layers[\(index)].in", in: width)
                let outputs = try integer(l.outputs, "model.layers[\(index)].out", in: width)
                parameterCount += inputs * outputs + outputs
                guard parameterCount <= ConformanceCase.maximumParameters else {
                    throw fail("model.layers[\(index)]: the model passes \(ConformanceCase.maximumParameters) parameters")
                }
                return .linear(inputs: inputs, outputs: outputs)
            case "relu": return .relu
            default: throw fail("unknown layer type \(l.type.map { "\($0)" } ?? "nil")")
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
        guard let order = file.paramOrder else { throw fail("param_order is missing") }
        parameterOrder = order
        guard let params = file.params else { throw fail("params is not an object of tensors") }
        parameters = params.mapValues(\.values)

        guard let xs = file.data?.x, let ys = file.data?.y else { throw fail("data.x / data.y are missing") }
        inputs = xs.map(\.values)
        guard inputs.count == ys.count, !inputs.isEmpty else { throw fail("data.x and data.y differ in length (or are empty)") }
        for (row, x) in inputs.enumerated() where x.count != first.inputs {
            throw fail("data.x row \(row) has \(x.count) values; the first linear layer takes \(first.inputs)")
        }
        labels = try ys.enumerated().map { Int32(try integer($1, "data.y[\($0)]", in: 0...(classes - 1))) }

        let loss = file.loss ?? VectorFile.Loss()
        guard (loss.type?.string ?? "cross_entropy") == "cross_entropy" else { throw fail("unknown loss \(loss.type.map { "\($0)" } ?? "")") }
        labelSmoothing = Float(loss.labelSmoothing ?? 0)

        guard let opt = file.optimizer else { throw fail("optimizer is missing") }
        learningRate = Float(try finite(opt.lr, "optimizer.lr"))
        weightDecay = Float(try finite(opt.weightDecay ?? 0, "optimizer.weight_decay"))
        switch opt.type?.string {
        case "sgd":
            optimizer = .sgd(momentum: Float(opt.momentum ?? 0), nesterov: opt.nesterov ?? false, weightDecay: weightDecay)
        case "adamw":
            let betas = opt.betas?.values ?? [0.9, 0.999]
            guard betas.count == 2, betas.allSatisfy({ $0 >= 0 && $0 < 1 }) else {
                throw fail("optimizer.betas is \(betas); it must be two numbers in [0, 1)")
            }
            optimizer = .adamW(beta1: Float(betas[0]), beta2: Float(betas[1]), eps: Float(opt.eps ?? 1e-8), weightDecay: weightDecay)
        default:
            throw fail("unknown optimizer \(opt.type.map { "\($0)" } ?? "nil")")
        }

        let stepCount = try integer(file.numSteps, "num_steps", in: 0...ConformanceCase.maximumSteps)
        guard let s = file.sam else { throw fail("sam is missing") }
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

        let stepList = file.steps ?? []
        guard stepList.count >= stepCount else { throw fail("num_steps is \(stepCount) but \(stepList.count) steps are recorded") }
        steps = stepList.prefix(stepCount).map { st in
            Step(loss: st.loss,
                 shards: (st.shards ?? []).map { $0.mapValues(\.value) },
                 updateDirection: st.updateDirection?.mapValues(\.values),
                 optimizerState: (st.optimizerStateAfter ?? [:]).mapValues { $0.mapValues(\.values) },
                 parametersAfter: st.paramsAfter?.mapValues(\.values),
                 updateDirectionNorm: st.updateDirectionNorm,
                 clipped: st.clipped)
        }
    }
}

/// A vector file as JSON (vectors/README.md, schema 1 and 2): what `ConformanceCase` checks.
/// A key that is missing or `null` is nil; keys the reader does not use (`description`,
/// `self_check`, `schema_version`, …) are ignored.
struct VectorFile: Decodable {
    var name: JSONValue?
    var model: Model?
    var paramOrder: [String]?
    var params: [String: Tensor]?
    var data: Batch?
    var loss: Loss?
    var optimizer: Optimizer?
    var numSteps: JSONValue?
    /// The shared keys and every variant's own (`VectorSettings`).
    var sam: [String: JSONValue]?
    var steps: [Step]?

    enum CodingKeys: String, CodingKey {
        case name, model, params, data, loss, optimizer, sam, steps
        case paramOrder = "param_order", numSteps = "num_steps"
    }

    struct Model: Decodable { var layers: [Layer]? }

    /// `{"type": "linear", "in": I, "out": O}` or `{"type": "relu"}`; the counts are checked
    /// against their ranges before use.
    struct Layer: Decodable {
        var type: JSONValue?
        var inputs: JSONValue?
        var outputs: JSONValue?
        enum CodingKeys: String, CodingKey { case type, inputs = "in", outputs = "out" }
    }

    struct Batch: Decodable {
        var x: [Tensor]?
        var y: [JSONValue]?
    }

    struct Loss: Decodable {
        var type: JSONValue?
        var labelSmoothing: Double?
        enum CodingKeys: String, CodingKey { case type, labelSmoothing = "label_smoothing" }
    }

    struct Optimizer: Decodable {
        var type: JSONValue?
        var lr: Double?
        var weightDecay: Double?
        var momentum: Double?
        var nesterov: Bool?
        var betas: Tensor?
        var eps: Double?
        enum CodingKeys: String, CodingKey { case type, lr, momentum, nesterov, betas, eps, weightDecay = "weight_decay" }
    }

    struct Step: Decodable {
        var loss: Double?
        var shards: [[String: Recorded]]?
        var updateDirection: [String: Tensor]?
        var optimizerStateAfter: [String: [String: Tensor]]?
        var paramsAfter: [String: Tensor]?
        var updateDirectionNorm: Double?
        var clipped: Bool?
        enum CodingKeys: String, CodingKey {
            case loss, shards, clipped
            case updateDirection = "update_direction", optimizerStateAfter = "optimizer_state_after"
            case paramsAfter = "params_after", updateDirectionNorm = "update_direction_norm"
        }
    }

    /// Nested lists of numbers (a tensor as PyTorch's `tolist()` writes it, or one number),
    /// flattened row-major.
    struct Tensor: Decodable {
        var values: [Double]
        init(from decoder: Decoder) throws {
            let single = try decoder.singleValueContainer()
            if let d = try? single.decode(Double.self) {
                values = [d]
            } else if var list = try? decoder.unkeyedContainer() {
                values = []
                while !list.isAtEnd { values += try list.decode(Tensor.self).values }
            } else {
                values = [try single.decode(Double.self)]   // the error: not a number
            }
        }
    }

    /// One value of a shard's record: a number, a list of numbers, or tensors by parameter name.
    struct Recorded: Decodable {
        var value: ConformanceCase.Recorded
        init(from decoder: Decoder) throws {
            if let d = try? decoder.singleValueContainer().decode(Double.self) {
                value = .scalar(d)
            } else if (try? decoder.container(keyedBy: JSONKey.self)) != nil {
                value = .vector(try [String: Tensor](from: decoder).mapValues(\.values))
            } else {
                value = .list(try Tensor(from: decoder).values)
            }
        }
    }
}
