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
    public var rhoMinPerStep: [Float]?
    public var weightDecay: Float
    public var steps: [Step]

    /// What step t recorded: scalars and vectors (by parameter name, flattened) per shard.
    public struct Step {
        public var loss: Double?
        public var shards: [[String: Recorded]]
        public var updateDirection: [String: [Double]]?
        public var optimizerState: [String: [String: [Double]]]
        public var parametersAfter: [String: [Double]]?
    }

    public enum Recorded {
        case scalar(Double)
        case vector([String: [Double]])
    }

    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw SAMTrainError("\(path): cannot read the file") }
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

        name = root["name"] as? String ?? (path as NSString).lastPathComponent
        guard let model = root["model"] as? [String: Any], let layerList = model["layers"] as? [[String: Any]] else {
            throw fail("model.layers is missing")
        }
        layers = try layerList.map { l in
            switch l["type"] as? String {
            case "linear": return .linear(inputs: Int(try number(l["in"], "linear.in")), outputs: Int(try number(l["out"], "linear.out")))
            case "relu": return .relu
            default: throw fail("unknown layer type \(l["type"] ?? "nil")")
            }
        }
        guard let order = root["param_order"] as? [String] else { throw fail("param_order is missing") }
        parameterOrder = order
        parameters = try vectors(root["params"], "params")

        guard let data = root["data"] as? [String: Any], let xs = data["x"] as? [Any], let ys = data["y"] as? [Any] else {
            throw fail("data.x / data.y are missing")
        }
        inputs = try xs.map { try flatten($0, "data.x") }
        labels = try ys.map { Int32(try number($0, "data.y")) }
        guard inputs.count == labels.count, !inputs.isEmpty else { throw fail("data.x and data.y differ in length") }

        let loss = root["loss"] as? [String: Any] ?? [:]
        guard (loss["type"] as? String ?? "cross_entropy") == "cross_entropy" else { throw fail("unknown loss \(loss["type"] ?? "")") }
        labelSmoothing = Float(try number(loss["label_smoothing"] ?? 0, "loss.label_smoothing"))

        guard let opt = root["optimizer"] as? [String: Any] else { throw fail("optimizer is missing") }
        learningRate = Float(try number(opt["lr"], "optimizer.lr"))
        weightDecay = Float(try number(opt["weight_decay"] ?? 0, "optimizer.weight_decay"))
        switch opt["type"] as? String {
        case "sgd":
            optimizer = .sgd(momentum: Float(try number(opt["momentum"] ?? 0, "optimizer.momentum")),
                             nesterov: opt["nesterov"] as? Bool ?? false, weightDecay: weightDecay)
        case "adamw":
            let betas = try flatten(opt["betas"] ?? [0.9, 0.999], "optimizer.betas")
            optimizer = .adamW(beta1: Float(betas[0]), beta2: Float(betas[1]),
                               eps: Float(try number(opt["eps"] ?? 1e-8, "optimizer.eps")), weightDecay: weightDecay)
        default:
            throw fail("unknown optimizer \(opt["type"] ?? "nil")")
        }

        guard let s = root["sam"] as? [String: Any] else { throw fail("sam is missing") }
        var c = SAMConfiguration()
        guard let variant = SAMConfiguration.Variant(rawValue: s["variant"] as? String ?? "") else {
            throw fail("unknown sam.variant \(s["variant"] ?? "nil")")
        }
        c.variant = variant
        if let rho = s["rho"] { c.rho = Float(try number(rho, "sam.rho")) }
        if let p = s["p"] { c.p = p is String ? (p as! String) : "\(try number(p, "sam.p"))" }
        c.normEps = try number(s["norm_eps"] ?? 1e-12, "sam.norm_eps")
        if let scope = s["asam_scope"] as? String {
            guard let a = SAMConfiguration.ASAMScope(rawValue: scope) else { throw fail("unknown sam.asam_scope \(scope)") }
            c.asamScope = a
        }
        if let eta = s["asam_eta"] { c.asamEta = Float(try number(eta, "sam.asam_eta")) }
        if let phi = s["bisam_phi"] as? String {
            guard let f = SAMConfiguration.BiSAMPhi(rawValue: phi) else { throw fail("unknown sam.bisam_phi \(phi)") }
            c.bisamPhi = f
        }
        if let mu = s["mu"] { c.mu = Float(try number(mu, "sam.mu")) }
        if let alpha = s["alpha"] { c.alpha = Float(try number(alpha, "sam.alpha")) }
        c.weightDecayInAscent = s["weight_decay_in_ascent"] as? Bool ?? false
        if let clip = s["clip_grad_norm"], !(clip is NSNull) { c.clipGradNorm = Float(try number(clip, "sam.clip_grad_norm")) }
        if let list = s["rho_min"] { rhoMinPerStep = try flatten(list, "sam.rho_min").map(Float.init) }
        m = Int(try number(s["m"] ?? inputs.count, "sam.m"))
        sam = c

        let stepCount = Int(try number(root["num_steps"], "num_steps"))
        let stepList = root["steps"] as? [[String: Any]] ?? []
        guard stepList.count >= stepCount else { throw fail("num_steps is \(stepCount) but \(stepList.count) steps are recorded") }
        steps = try stepList.prefix(stepCount).map { st in
            let shards = try (st["shards"] as? [[String: Any]] ?? []).map { shard in
                try shard.mapValues { v -> Recorded in
                    v is [String: Any] ? .vector(try vectors(v, "shard vector")) : .scalar(try number(v, "shard value"))
                }
            }
            var state: [String: [String: [Double]]] = [:]
            for (k, v) in st["optimizer_state_after"] as? [String: Any] ?? [:] { state[k] = try vectors(v, "optimizer_state_after.\(k)") }
            return Step(loss: try st["loss"].map { try number($0, "loss") },
                        shards: shards,
                        updateDirection: try st["update_direction"].map { try vectors($0, "update_direction") },
                        optimizerState: state,
                        parametersAfter: try st["params_after"].map { try vectors($0, "params_after") })
        }
    }
}
