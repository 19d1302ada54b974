import CBLAS
import Foundation

/// OpenBLAS (built with DYNAMIC_ARCH, as Debian's is) picks its sgemm kernels when it loads,
/// from the CPU's family and model numbers. On a model it does not know — a newer CPU, or a
/// virtual machine's "Intel Xeon Processor" — Debian's 0.3.21 falls back to Prescott's SSE3
/// kernels: 32.6 GFLOP/s against 151 with its SkylakeX kernels on the same AVX-512 core. The
/// choice is made before `main`, so samtrain starts itself again with `OPENBLAS_CORETYPE`
/// naming the kernels the CPU's features support (docs/algorithms.md §12). This happens
/// before MPI starts: under mpirun the rank stays the same process. A user's own
/// `OPENBLAS_CORETYPE` is always kept.
public enum BLASCore {
    /// The kernels OpenBLAS runs ("SkylakeX", "Haswell", "Prescott", …).
    public static var name: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// OpenBLAS's fallbacks for CPUs it does not recognize: no AVX2, whatever the CPU has.
    static let fallbacks: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "sandybridge"]

    /// The kernels to ask for instead of `current` on a CPU whose vector kernels run `best`,
    /// or nil to keep `current`.
    static func better(than current: String, best: KernelPath) -> String? {
        guard fallbacks.contains(current.lowercased()) else { return nil }
        switch best {
        case .avx512: return "SkylakeX"
        case .avx2: return "Haswell"
        case .generic: return nil
        }
    }

    /// Replaces this process by itself with `OPENBLAS_CORETYPE` set when OpenBLAS fell back
    /// to kernels below the CPU's; returns only when nothing needs to change (or exec fails).
    public static func restartWithFasterKernelsIfNeeded() {
        guard getenv("OPENBLAS_CORETYPE") == nil, let core = better(than: name, best: .best) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // exec failed (no /proc): carry on with the slower kernels.
    }
}
