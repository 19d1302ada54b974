import CKernels
import Foundation

/// Which copy of samtrain's vector kernels a process runs (docs/algorithms.md §12): the same
/// loops compiled for AVX-512, for AVX2 + FMA and for any CPU. One is chosen at start: the
/// widest this CPU and its OS support, or the one `SAMTRAIN_KERNELS` names.
public enum KernelPath: String, CaseIterable, Sendable {
    case avx512, avx2, generic

    var code: Int32 {
        switch self {
        case .avx512: Int32(SAMTRAIN_KERNELS_AVX512)
        case .avx2: Int32(SAMTRAIN_KERNELS_AVX2)
        case .generic: Int32(SAMTRAIN_KERNELS_GENERIC)
        }
    }

    /// Whether this CPU and OS run the path.
    public var isAvailable: Bool { samtrain_kernel_paths_available() & (1 << code) != 0 }

    /// The widest path this machine runs.
    public static var best: KernelPath { allCases.first(where: \.isAvailable)! }

    public static let environmentVariable = "SAMTRAIN_KERNELS"

    /// The path `SAMTRAIN_KERNELS` asks for (an error when it names no path or one this CPU
    /// lacks), else the best.
    public static func chosen(environment: [String: String]) throws -> KernelPath {
        guard let value = environment[environmentVariable], !value.isEmpty else { return best }
        let available = allCases.filter(\.isAvailable).map(\.rawValue).joined(separator: ", ")
        guard let path = KernelPath(rawValue: value) else {
            throw SAMTrainError("\(environmentVariable)=\(value): not a kernel path; choose one of \(allCases.map(\.rawValue).joined(separator: ", ")) (this CPU runs \(available))")
        }
        guard path.isAvailable else {
            throw SAMTrainError("\(environmentVariable)=\(value): this CPU or its OS cannot run the \(value) kernels (it runs \(available))")
        }
        return path
    }
}

/// The vector kernels of one path (include/CKernels.h says what each computes).
public struct VectorKernels: @unchecked Sendable {
    public let path: KernelPath
    let table: UnsafePointer<SamtrainVectorKernels>

    /// nil when this CPU cannot run `path`.
    public init?(_ path: KernelPath) {
        guard let table = samtrain_vector_kernels(path.code) else { return nil }
        self.path = path
        self.table = table
    }

    /// The process's kernels, fixed at first use: `SAMTRAIN_KERNELS`'s path, else the best.
    /// `samtrain` checks the variable before anything runs, so a bad value is reported there.
    public static let active: VectorKernels = {
        let path = (try? KernelPath.chosen(environment: ProcessInfo.processInfo.environment)) ?? .best
        return VectorKernels(path)!
    }()

    func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        table.pointee.gelu_forward(x, y, n)
    }
    func geluBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ n: Int) {
        table.pointee.gelu_backward(x, dy, dx, n)
    }
    func softmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        table.pointee.softmax_rows(p, rows, columns)
    }
    func softmaxBackwardRows(_ p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        table.pointee.softmax_backward_rows(p, g, rows, columns)
    }
    func layerNormForward(_ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                          _ y: UnsafeMutablePointer<Float>, statistics: UnsafeMutablePointer<Float>,
                          rows: Int, features: Int, epsilon: Float) {
        table.pointee.layer_norm_forward(x, gamma, beta, y, statistics, rows, features, epsilon)
    }
    func layerNormBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                           statistics: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                           dGamma: UnsafeMutablePointer<Float>?, dBeta: UnsafeMutablePointer<Float>?,
                           rows: Int, features: Int) {
        table.pointee.layer_norm_backward(x, dy, gamma, statistics, dx, dGamma, dBeta, rows, features)
    }
    func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        table.pointee.add(a, b, out, n)
    }
    /// Floats of scratch `attentionForward` and `attentionBackward` need.
    static func attentionScratchCount(tokens: Int, headWidth: Int) -> Int {
        samtrain_attention_scratch_count(tokens, headWidth)
    }
    func attentionForward(_ qkv: UnsafePointer<Float>, tokens: Int, width: Int, heads: Int,
                          probabilities: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
                          scratch: UnsafeMutablePointer<Float>) {
        table.pointee.attention_forward(qkv, tokens, width, heads, probabilities, output, scratch)
    }
    func attentionBackward(_ qkv: UnsafePointer<Float>, probabilities: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
                           tokens: Int, width: Int, heads: Int, inputGradient: UnsafeMutablePointer<Float>,
                           scratch: UnsafeMutablePointer<Float>) {
        table.pointee.attention_backward(qkv, probabilities, gradOutput, tokens, width, heads, inputGradient, scratch)
    }
    func addRows(_ g: UnsafePointer<Float>, rows: Int, columns: Int, to sums: UnsafeMutablePointer<Float>) {
        table.pointee.add_rows(g, rows, columns, sums)
    }
}
