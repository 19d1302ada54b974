import CKernels

/// The process's floating-point mode (docs/algorithms.md §6.7).
public enum FloatingPointMode {
    /// Subnormal floats (below 1.2e-38) become 0 on the calling thread: x86's FTZ and DAZ.
    /// A ViT's softmax tail and the gradients behind it reach them, and each operation on one
    /// takes a microcode assist: vit-t4's step ran 2.3× slower without this. Set once, at
    /// the start of `samtrain`, on the thread that computes (BLAS runs there with 1 thread).
    public static func flushSubnormals() { samtrain_flush_subnormals() }
}
