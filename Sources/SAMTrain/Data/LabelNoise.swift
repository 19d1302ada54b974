/// Symmetric label noise (docs/algorithms.md §7.7): exactly round(f·N) training examples, chosen from the
/// seed alone, get a different class drawn uniformly from the other K−1. The same seed gives
/// the same corruption on every rank and for every optimizer.
public enum LabelNoise {
    public static func corrupt(_ labels: [Int32], fraction: Float, classes: Int, seed: UInt64) -> (labels: [Int32], changed: Int) {
        var rng = SplitMix64(seed: seed, stream: RandomStream.labelNoise.rawValue)
        let count = Int((Double(fraction) * Double(labels.count)).rounded())
        var noisy = labels
        for i in rng.permutation(labels.count).prefix(count) {
            let shift = Int32(1 + rng.nextInt(below: classes - 1))   // 1 ... K−1: never the same class
            noisy[i] = (labels[i] + shift) % Int32(classes)
        }
        return (noisy, count)
    }
}
