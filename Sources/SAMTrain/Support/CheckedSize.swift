import Foundation

/// Sizes and counts read from files are hostile until checked: they are multiplied without
/// overflow and held to a limit before anything is allocated from them.
public enum CheckedSize {
    /// `factors` multiplied together, or nil when the product overflows `Int` or passes `limit`
    /// (a negative factor is refused too).
    public static func product(_ factors: [Int], limit: Int = .max) -> Int? {
        var p = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (next, overflow) = p.multipliedReportingOverflow(by: f)
            guard !overflow, next <= limit else { return nil }
            p = next
        }
        return p
    }

    /// A whole number read from JSON (an NSNumber, Double or Int) as an `Int` in `range`, or
    /// nil: a fraction, ±∞, NaN or a value ≥ 2⁶³ never reaches `Int(_:)`, which would trap.
    public static func integer(_ value: Any?, in range: ClosedRange<Int>) -> Int? {
        guard let value, !isBoolean(value), !(value is String) else { return nil }
        if type(of: value) == Int.self { return range.contains(value as! Int) ? value as? Int : nil }
        if type(of: value) == Double.self { return integer(value as! Double, in: range) }
        guard let n = value as? NSNumber else { return nil }
        // JSONSerialization's numbers: integers in an integer type, the rest as doubles.
        let kind = String(cString: n.objCType)
        if kind != "d" && kind != "f" {
            // The text check refuses what a conversion would wrap (Foundation stores
            // −2⁶³−1 as an integer that converts to −2⁶³+1).
            guard let i = Int(exactly: n), n.stringValue == String(i) else { return nil }
            return range.contains(i) ? i : nil
        }
        return integer(n.doubleValue, in: range)
    }

    /// A whole number held in a Double, as an `Int` in `range`, or nil (a fraction, ±∞, NaN,
    /// or beyond ±9.2·10¹⁸, which `Int(_:)` could trap on).
    public static func integer(_ d: Double, in range: ClosedRange<Int>) -> Int? {
        guard d.isFinite, d == d.rounded(), d > -9.2e18, d < 9.2e18 else { return nil }
        let i = Int(d)
        return range.contains(i) ? i : nil
    }

    /// JSONSerialization's true/false (Foundation bridges numbers to Bool too, so test the type).
    private static func isBoolean(_ v: Any) -> Bool {
        type(of: v) == Bool.self || String(describing: type(of: v)).contains("Boolean")
    }

    /// The ordinary range text of an error message: "1…100".
    public static func describe(_ range: ClosedRange<Int>) -> String { "\(range.lowerBound)…\(range.upperBound)" }
}
