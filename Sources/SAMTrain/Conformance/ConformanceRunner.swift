import Foundation

/// Runs a `ConformanceCase` through the real step frame and compares every recorded number
/// with tolerance |a − b| ≤ 2e-6 + 2e-5·|b| (vectors/README.md). Under R ranks each rank
/// takes its contiguous slice of the batch, exactly as in training.
public enum ConformanceRunner {
    public static let absoluteTolerance = 2e-6
    public static let relativeTolerance = 2e-5

    /// The largest deviation of one quantity at one step.
    public struct Deviation {
        public var quantity: String
        public var maxAbsolute = 0.0
        public var maxRelative = 0.0
        /// max |a − b| / (2e-6 + 2e-5·|b|): ≤ 1 passes.
        public var worstRatio = 0.0
        public var missing = false
        public var passed: Bool { !missing && worstRatio <= 1 }

        mutating func add(_ a: Double, _ b: Double) {
            let d = abs(a - b)
            maxAbsolute = max(maxAbsolute, d.isNaN ? .infinity : d)
            if b != 0 { maxRelative = max(maxRelative, d / abs(b)) }
            let r = d / (absoluteTolerance + relativeTolerance * abs(b))
            worstRatio = max(worstRatio, r.isNaN ? .infinity : r)
        }
    }

    public struct Report {
        public var name: String
        public var ranks: Int
        /// deviations[t] = step t's quantities.
        public var deviations: [[Deviation]]
        public var passed: Bool { deviations.allSatisfy { $0.allSatisfy(\.passed) } }
        public var worstRatio: Double { deviations.joined().map(\.worstRatio).max() ?? 0 }
    }

    /// Runs `c` on every rank of `world`; the report is complete on rank 0. `m` replaces the
    /// file's examples-per-perturbation (to show that the wrong scope fails).
    public static func run(_ c: ConformanceCase, world: Communicator, m overrideM: Int? = nil) throws -> Report {
        let n = c.inputs.count, R = world.size
        guard n % R == 0 else {
            throw SAMTrainError("\(c.name): its batch of \(n) examples does not split over \(R) ranks; use a rank count that divides \(n)")
        }
        let b = n / R

        // The model, from the file's layer list, with its parameters.
        let store = ParameterStore()
        var layers: [Layer] = []
        for (index, spec) in c.layers.enumerated() {
            switch spec {
            case let .linear(inputs, outputs): layers.append(Linear(store: store, name: "\(index)", inputs: inputs, outputs: outputs))
            case .relu: layers.append(ReLU())
            }
        }
        let features = c.inputs[0].count
        let model = Sequential(store: store, layers: layers, inputShape: [features], classes: 0)
        for slot in store.parameters {
            guard let values = c.parameters[slot.name], values.count == slot.count else {
                throw SAMTrainError("\(c.name): params has no tensor \(slot.name) of \(slot.count) values")
            }
            for i in 0..<slot.count { store.values[slot.offset + i] = Float(values[i]) }
        }

        // This rank's contiguous slice of the batch.
        let images = Tensor(shape: [b, features])
        for row in 0..<b {
            let x = c.inputs[world.rank * b + row]
            guard x.count == features else { throw SAMTrainError("\(c.name): data.x rows differ in length") }
            for k in 0..<features { images[row * features + k] = Float(x[k]) }
        }
        let labels = Array(c.labels[(world.rank * b)..<((world.rank + 1) * b)])

        var sam = c.sam
        sam.scopeName = .shard
        sam.m = overrideM ?? c.m
        let settings = StepSettings(sam: sam, optimizer: c.optimizer, labelSmoothing: c.labelSmoothing, globalBatch: n)
        let step = try SAMStep.make(model: model, settings: settings, world: world)
        let optimizer = step.optimizer
        step.measuresDirectionNorm = true
        let recorder = Recorder()
        step.passes.recorder = recorder

        var report = Report(name: c.name, ranks: R, deviations: [])
        for (t, expected) in c.steps.enumerated() {
            recorder.shards = []
            let context = StepContext(step: t, learningRate: c.learningRate,
                                      maximumLearningRate: c.learningRate, minimumLearningRate: c.learningRate, seed: 0)
            step.run(images: images, labels: labels, context: context)
            let shards = try gatherShards(recorder.shards, layout: step.layout, world: world)
            guard world.isCoordinator else { continue }

            var deviations: [String: Deviation] = [:]
            var order: [String] = []
            func compare(_ quantity: String, _ ours: [Double]?, _ theirs: [Double]) {
                if deviations[quantity] == nil { deviations[quantity] = Deviation(quantity: quantity); order.append(quantity) }
                guard let ours, ours.count == theirs.count else { deviations[quantity]!.missing = true; return }
                for (a, e) in zip(ours, theirs) { deviations[quantity]!.add(a, e) }
            }
            func flat(_ named: [String: [Double]]) -> [Double] { store.parameters.flatMap { named[$0.name] ?? [] } }
            func ours(_ buffer: FlatBuffer) -> [Double] { buffer.array.map(Double.init) }

            if let loss = expected.loss {
                let losses = shards.compactMap { $0["loss_at_w"]?.first }
                compare("loss", losses.isEmpty ? nil : [losses.reduce(0, +) / Double(losses.count)], [loss])
            }
            if expected.shards.count != shards.count {
                compare("shard count", [Double(shards.count)], [Double(expected.shards.count)])
            }
            for (k, recorded) in expected.shards.enumerated() {
                for (key, value) in recorded.sorted(by: { $0.key < $1.key }) {
                    var mine = k < shards.count ? shards[k][key] : nil
                    // Global shard k holds the examples [k·m, (k+1)·m) (gatherShards' order).
                    if key == "example_range" { mine = [Double(k * step.layout.examplesPerPerturbation), Double((k + 1) * step.layout.examplesPerPerturbation)] }
                    switch value {
                    case .scalar(let v): compare(key, mine, [v])
                    case .vector(let named): compare(key, mine, flat(named))
                    case .list(let values): compare(key, mine, values)
                    }
                }
            }
            if let norm = expected.updateDirectionNorm { compare("update_direction_norm", step.directionNorm.map { [$0] }, [norm]) }
            if let clipped = expected.clipped { compare("clipped", [step.clipped ? 1 : 0], [clipped ? 1 : 0]) }
            if let u = expected.updateDirection { compare("update_direction", ours(step.direction), flat(u)) }
            for (name, named) in expected.optimizerState.sorted(by: { $0.key < $1.key }) {
                compare("optimizer_state." + name, optimizer.state.first { $0.name == name }.map { ours($0.buffer) }, flat(named))
            }
            if let p = expected.parametersAfter { compare("params_after", ours(store.values), flat(p)) }
            report.deviations.append(order.map { deviations[$0]! })
        }
        return report
    }

    /// Every shard's quantities, in global shard order, on rank 0. A micro-shard is a shard
    /// of its own; a shard spanning a group of ranks is the mean over the group.
    static func gatherShards(_ local: [[(String, [Double])]], layout: ShardLayout, world: Communicator) throws -> [[String: [Double]]] {
        let flat = local.flatMap { $0.flatMap { $0.1 } }
        let length = flat.count
        guard world.allreduceMax(Int64(length)) == Int64(length), world.allreduceMin(Int64(length)) == Int64(length) else {
            throw SAMTrainError("ranks recorded different quantities")
        }
        var all = [Double](repeating: 0, count: length * world.size)
        all.replaceSubrange((world.rank * length)..<((world.rank + 1) * length), with: flat)
        all = world.allreduceSum(all)
        let g = layout.groupSize
        var shards: [[String: [Double]]] = []
        for r in stride(from: 0, to: world.size, by: g) {
            for s in 0..<local.count {
                var shard: [String: [Double]] = [:]
                var offset = local[..<s].reduce(0) { $0 + $1.reduce(0) { $0 + $1.1.count } }
                for (key, values) in local[s] {
                    var mean = [Double](repeating: 0, count: values.count)
                    for member in r..<(r + g) {
                        let base = member * length + offset
                        for i in 0..<values.count { mean[i] += all[base + i] / Double(g) }
                    }
                    shard[key] = mean
                    offset += values.count
                }
                shards.append(shard)
            }
        }
        return shards
    }

    /// Collects the passes' quantities shard by shard (a clean pass starts a shard).
    final class Recorder: ShardRecorder {
        var shards: [[(String, [Double])]] = []
        func record(_ key: String, value: Double) {
            if key == "loss_at_w" { shards.append([]) }
            shards[shards.count - 1].append((key, [value]))
        }
        func record(_ key: String, buffer: FlatBuffer) {
            shards[shards.count - 1].append((key, buffer.array.map(Double.init)))
        }
    }
}
