import Foundation

/// The phases of a step that the bench and the metrics report.
public enum Phase: String, CaseIterable, Sendable {
    case data, forward, backward, ascent, allreduce, update
}

/// Accumulates wall time per phase.
public final class PhaseTimer {
    public private(set) var seconds: [Phase: Double] = [:]

    public init() {}

    @inline(__always) public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    @discardableResult
    @inline(__always) public func measure<T>(_ phase: Phase, _ body: () throws -> T) rethrows -> T {
        let t0 = PhaseTimer.now()
        defer { seconds[phase, default: 0] += PhaseTimer.now() - t0 }
        return try body()
    }

    public func reset() { seconds.removeAll() }

    public var total: Double { seconds.values.reduce(0, +) }
}
