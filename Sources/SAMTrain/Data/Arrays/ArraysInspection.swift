/// `samtrain data inspect FILE`: what an arrays file holds, split by split, and every
/// problem `--dataset arrays` would refuse it for.
extension ArraysFile {
    /// The report's lines, and whether train accepts the file.
    public func inspection() -> (lines: [String], accepted: Bool) {
        let check = check()
        var lines = ["\(path): \(arrays.count) array(s)\(metadata.isEmpty ? "" : ", metadata " + metadata.keys.sorted().joined(separator: ", "))"]
        let width = max(12, arrays.map(\.name.count).max() ?? 0)
        for a in arrays {
            let role = Self.required.contains(a.name) || Self.optional.contains(a.name) ? "" : "  (not read by samtrain)"
            lines.append("  " + a.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                         + a.type.description.padding(toLength: 8, withPad: " ", startingAt: 0) + "  " + a.shapeText + role)
        }
        let classes = check.classes
        for split in [check.train, check.test].compactMap({ $0 }) {
            var line = "\(split.name): \(split.count) example(s)"
            if let s = split.imageShape { line += ", images \(s.height)×\(s.width), \(s.channels) channel(s)" }
            lines.append(line)
            if let labels = split.labels, let classes {
                var counts = [Int](repeating: 0, count: classes)
                for l in labels where l < Int64(classes) { counts[Int(l)] += 1 }
                let names = check.classNames
                let shown = counts.enumerated().prefix(20).map { "\(names?[$0.offset] ?? String($0.offset)): \($0.element)" }
                lines.append("  per class: " + shown.joined(separator: ", ") + (classes > 20 ? ", … (\(classes) classes)" : ""))
                if let empty = counts.firstIndex(of: 0), split.name == "train" {
                    lines.append("  note: class \(names?[empty] ?? String(empty)) has no training example")
                }
            }
        }
        if let classes {
            let source = check.classNames != nil ? "named in the file" : "the largest label + 1"
            lines.append("classes: \(classes) (\(source))" + (check.classNames.map { ": " + $0.prefix(20).joined(separator: ", ") + ($0.count > 20 ? ", …" : "") } ?? ""))
        }
        let values = { (v: [Float]) in v.map { String(describing: ($0 * 10_000).rounded() / 10_000) }.joined(separator: ", ") }
        if check.problems.isEmpty, let loaded = try? datasets(), let n = loaded.train.normalization {
            lines.append("normalization: mean (\(values(n.mean))), std (\(values(n.std))), \(loaded.normalization.rawValue)")
        } else if let mean = check.mean, let std = check.std {
            lines.append("normalization: mean (\(values(mean))), std (\(values(std))), from the file")
        }
        if check.problems.isEmpty {
            lines.append("ok: samtrain train --dataset arrays --data \(path) accepts this file")
        } else {
            lines.append("\(check.problems.count) problem(s); samtrain train refuses this file:")
            lines += check.problems.map { "  - " + $0 }
        }
        return (lines, check.problems.isEmpty)
    }
}
