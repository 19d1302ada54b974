import CBLAS
import Foundation

/// `samtrain bench`: times training steps of a model on a fixed random batch, per phase,
/// beside OpenBLAS's sgemm measured in the same run (the reference a speed is quoted
/// against, since absolute times drift on shared machines).
public struct Benchmark {
    public struct Result: Codable, Sendable {
        public var model: String
        public var variant: String
        public var scope: String
        public var ranks: Int
        public var threadsPerRank: Int
        public var batchPerRank: Int
        /// Examples per chunk of a pass (`--micro-batch`), nil for whole shards.
        public var microBatch: Int?
        public var steps: Int
        public var imagesPerSecond: Double
        public var medianStepSeconds: Double
        /// Mean over the timed steps: the cost of a variant whose steps differ (LookSAM's
        /// full step every k-th), where the median is one kind of step.
        public var meanStepSeconds: Double
        /// Mean seconds per step of each phase (slowest rank).
        public var phaseSeconds: [String: Double]
        public var modelGFLOPsPerRank: Double
        public var sgemmGFLOPsPerRank: Double
        public var sgemmSize: Int
        /// The input shape timed (the model's data shape, docs/algorithms.md §12).
        public var inputShape: [Int]
        /// Peak resident memory of the largest rank, MB (getrusage's maximum RSS).
        public var peakResidentMBPerRank: Double
        /// Forward FLOPs of one example (2 per multiply-add, convolutions and linear layers).
        public var forwardFLOPsPerImage: Double
        /// Mean seconds per step in each layer type's forward and backward passes (slowest
        /// rank, every pass of the variant).
        public var layerSeconds: [String: LayerProfile.Times]
        /// The same for each shape of the convolutions and linear layers, with its FLOPs per
        /// step (its GFLOP/s against `sgemmGFLOPsPerRank`).
        public var shapeSeconds: [String: LayerProfile.ShapeTimes]
        /// With `shapesAloneExamples`: each shape's layer timed alone on that many examples,
        /// over and over (seconds and FLOPs per call; nil when not asked for).
        public var shapeAloneSeconds: [String: LayerProfile.ShapeTimes]?
        /// What the CPU runs: OpenBLAS's build and core, and samtrain's kernel path (AVX-512,
        /// AVX2 + FMA or portable) and whether its direct convolutions are in use.
        public var cpu: String
    }

    public var model: ModelConfiguration
    /// The step timed: its variant, scope, optimizer and global batch (÷ ranks per rank).
    public var step: StepSettings
    /// The rate of every timed step (GSAM's and BSAM's radii follow it between it and 0).
    public var learningRate: Float
    public var steps: Int
    public var warmup: Int
    public var threads: Int
    public var seed: UInt64 = 0
    /// How the net's convolutions run (`bench --convolution`).
    public var convolution = ConvolutionSettings()
    /// Also time each convolution and linear shape alone on this many examples per call
    /// (`bench --shapes-alone N`), over and over on the same data: what its kernels reach
    /// when its data stays in the cache, without the model's traffic around them.
    public var shapesAloneExamples: Int?

    public init(model: ModelConfiguration, step: StepSettings, learningRate: Float, steps: Int, warmup: Int, threads: Int) {
        self.model = model
        self.step = step
        self.learningRate = learningRate
        self.steps = steps
        self.warmup = warmup
        self.threads = threads
    }

    public func run(world: Communicator) throws -> Result {
        openblas_set_num_threads(1)
        let R = world.size, batchPerRank = self.step.globalBatch / R
        try model.check(imageShape: model.defaultInputShape, classes: 10, source: "samtrain bench")
        let net = model.build(inputShape: model.defaultInputShape, convolution: convolution)
        net.parallelism = Parallelism(threads: threads)
        net.initialize(seed: seed)
        let step = try SAMStep.make(model: net, settings: self.step, world: world)
        let layout = step.layout

        var rng = SplitMix64(seed: seed &+ UInt64(world.rank), stream: RandomStream.sharpness.rawValue)
        let images = Tensor(shape: [batchPerRank] + net.inputShape)
        for i in 0..<images.count { images[i] = rng.uniform(-1, 1) }
        let labels = (0..<batchPerRank).map { _ in Int32(rng.nextInt(below: net.classes)) }
        // Steps are numbered as in training (LookSAM's schedule, F-SAM's first step, ESAM's draws);
        // the warm-up and timed steps are the run (`--sam-every`, `--sam-from`).
        func context(_ t: Int) -> StepContext {
            StepContext(step: t, learningRate: learningRate, maximumLearningRate: learningRate, minimumLearningRate: 0, seed: seed,
                        totalSteps: warmup + steps)
        }

        for t in 0..<warmup { step.run(images: images, labels: labels, context: context(t)) }
        world.barrier()
        step.timer.reset()
        let profile = LayerProfile()
        net.profile = profile
        var stepTimes: [Double] = []
        for t in 0..<steps {
            let t0 = PhaseTimer.now()
            step.run(images: images, labels: labels, context: context(warmup + t))
            stepTimes.append(PhaseTimer.now() - t0)
        }
        // The job runs at the pace of its slowest rank.
        let slowest = world.allreduceMaxDoubles(stepTimes)
        let median = slowest.sorted()[slowest.count / 2]
        let phases = Phase.allCases.map { step.timer.seconds[$0, default: 0] / Double(steps) }
        let slowestPhases = world.allreduceMaxDoubles(phases)
        net.profile = nil
        // Per step (per call, with `calls` 1), the slowest rank's forward and backward seconds of each entry.
        func slowestPerStep<Entry>(_ entries: [String: Entry], calls: Int = steps, _ seconds: (Entry) -> (Double, Double)) -> [String: (Double, Double)] {
            // Every rank runs the same layers, so the keys agree; sorted for the same order.
            let names = entries.keys.sorted()
            let times = world.allreduceMaxDoubles(names.flatMap { name -> [Double] in
                let (forward, backward) = seconds(entries[name]!)
                return [forward / Double(calls), backward / Double(calls)]
            })
            return Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, (times[2 * $0], times[2 * $0 + 1])) })
        }
        let layerSeconds = slowestPerStep(profile.seconds) { ($0.forward, $0.backward) }
            .mapValues { LayerProfile.Times(forward: $0.0, backward: $0.1) }
        let shapeSeconds = slowestPerStep(profile.shapes) { ($0.forward, $0.backward) }.map { name, t in
            let flops = profile.shapes[name]!   // the same on every rank
            return (name, LayerProfile.ShapeTimes(forward: t.0, backward: t.1, forwardFLOPs: flops.forwardFLOPs / Double(steps),
                                                  backwardFLOPs: flops.backwardFLOPs / Double(steps)))
        }
        let alone = shapesAloneExamples.map { examples in
            let times = Benchmark.timeShapesAlone(profile, examples: examples, parallelism: net.parallelism, seed: seed)
            return Dictionary(uniqueKeysWithValues: slowestPerStep(times, calls: 1) { ($0.forward, $0.backward) }.map { name, t in
                var slowest = times[name]!   // the FLOPs are the same on every rank
                (slowest.forward, slowest.backward) = t
                return (name, slowest)
            })
        }

        // The reference on as many threads as the model: OpenBLAS's own, for this measure only.
        openblas_set_num_threads(Int32(threads))
        let sgemm = Benchmark.sgemmGFLOPs(size: 512)
        openblas_set_num_threads(1)
        let imagesPerSecond = Double(batchPerRank * R) / median
        // Backward ≈ 2 × forward; each pass of the variant is one forward + backward.
        let sam = self.step.sam
        // A schedule's plain steps make one pass (`--sam-every`, `--sam-from`).
        let sampled = sam.schedule.ascentSteps(in: warmup..<(warmup + steps), totalSteps: warmup + steps)
        let ascentShare = Double(sampled) / Double(steps)
        let passes = ascentShare * sam.options.passesPerStep + (1 - ascentShare)
        let flopsPerImage = net.forwardFLOPsPerExample * 3 * passes
        return Result(model: model.commandLine, variant: step.variant.name, scope: sam.globalScope ? "global" : "shard m \(layout.examplesPerPerturbation)",
                      ranks: R, threadsPerRank: threads, batchPerRank: batchPerRank, microBatch: self.step.microBatch, steps: steps,
                      imagesPerSecond: imagesPerSecond, medianStepSeconds: median,
                      meanStepSeconds: slowest.reduce(0, +) / Double(max(slowest.count, 1)),
                      phaseSeconds: Dictionary(uniqueKeysWithValues: zip(Phase.allCases.map(\.rawValue), slowestPhases)),
                      modelGFLOPsPerRank: flopsPerImage * imagesPerSecond / Double(R) / 1e9,
                      sgemmGFLOPsPerRank: sgemm, sgemmSize: 512, inputShape: net.inputShape,
                      peakResidentMBPerRank: world.allreduceMaxDoubles([Benchmark.peakResidentMB()])[0],
                      forwardFLOPsPerImage: net.forwardFLOPsPerExample, layerSeconds: layerSeconds,
                      shapeSeconds: Dictionary(uniqueKeysWithValues: shapeSeconds),
                      shapeAloneSeconds: alone,
                      cpu: Benchmark.cpuDescription())
    }

    /// Seconds per forward and per backward call (∂W and ∂x) of each shape's layer on
    /// `examples` examples of random data, over and over so that its data stays in the cache
    /// (as far as it fits): the best of 5 rounds of about 5 ms each. The FLOPs are those of one
    /// call (backward, ∂W and ∂x, twice the forward's).
    static func timeShapesAlone(_ profile: LayerProfile, examples: Int, parallelism: Parallelism, seed: UInt64) -> [String: LayerProfile.ShapeTimes] {
        var rng = SplitMix64(seed: seed, stream: RandomStream.sharpness.rawValue)
        var mode = PassMode.train
        mode.parallelism = parallelism
        var result: [String: LayerProfile.ShapeTimes] = [:]
        for (key, entry) in profile.shapeLayers.sorted(by: { $0.key < $1.key }) {
            let layer = entry.layer
            let x = Tensor(shape: [examples] + entry.inputShape)
            for i in 0..<x.count { x[i] = rng.uniform(-1, 1) }
            let g = Tensor(shape: [examples] + layer.outputShape(for: entry.inputShape))
            for i in 0..<g.count { g[i] = rng.uniform(-1, 1) }
            // One call each to size the rounds (and to warm the caches).
            var t0 = PhaseTimer.now()
            _ = layer.forward(x, mode: mode)
            _ = layer.backward(g, inputGradient: true)
            let calls = max(1, Int(0.005 / max(PhaseTimer.now() - t0, 1e-9)))
            var best = LayerProfile.Times(forward: .infinity, backward: .infinity)
            for _ in 0..<5 {
                var forward = 0.0, backward = 0.0
                for _ in 0..<calls {
                    t0 = PhaseTimer.now()
                    _ = layer.forward(x, mode: mode)
                    let t1 = PhaseTimer.now()
                    _ = layer.backward(g, inputGradient: true)
                    forward += t1 - t0
                    backward += PhaseTimer.now() - t1
                }
                best.forward = min(best.forward, forward / Double(calls))
                best.backward = min(best.backward, backward / Double(calls))
            }
            let flops = layer.forwardFLOPsPerExample(inputShape: entry.inputShape) * Double(examples)
            result[key] = LayerProfile.ShapeTimes(forward: best.forward, backward: best.backward, forwardFLOPs: flops, backwardFLOPs: 2 * flops)
        }
        return result
    }

    /// OpenBLAS's configuration (its build and the core it picked) and samtrain's kernels.
    public static func cpuDescription() -> String {
        let blas = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        let conv = Conv2d.directKernelsAvailable ? "direct convolution" : "convolutions on sgemm"
        return "\(blas); samtrain kernels \(VectorKernels.active.path.rawValue) (vector, \(conv))"
    }

    /// This process's peak resident set size so far, in MB (Linux reports ru_maxrss in kB).
    public static func peakResidentMB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// GFLOP/s of cblas_sgemm on n×n matrices with the current thread setting.
    public static func sgemmGFLOPs(size n: Int) -> Double {
        let a = FlatBuffer(count: n * n), b = FlatBuffer(count: n * n), c = FlatBuffer(count: n * n)
        var rng = SplitMix64(seed: 1)
        for i in 0..<(n * n) { a[i] = rng.uniform(-1, 1); b[i] = rng.uniform(-1, 1) }
        func gemm() {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n),
                        1, a.data, Int32(n), b.data, Int32(n), 0, c.data, Int32(n))
        }
        gemm()
        var best = Double.infinity
        for _ in 0..<3 {
            let reps = 5
            let t0 = PhaseTimer.now()
            for _ in 0..<reps { gemm() }
            best = min(best, (PhaseTimer.now() - t0) / Double(reps))
        }
        return 2 * Double(n * n * n) / best / 1e9
    }
}
