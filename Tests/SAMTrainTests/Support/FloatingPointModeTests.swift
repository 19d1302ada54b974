import Foundation
import XCTest
@testable import SAMTrain

/// docs/algorithms.md §6.7: subnormal results and inputs read as zero once the mode is set.
final class FloatingPointModeTests: XCTestCase {
    func testSubnormalsAreFlushedOnTheThreadThatSetsTheMode() {
        // On a thread of its own: the mode is per thread, and the test process's stays as it is.
        final class Box: @unchecked Sendable { var before: Float = -1, after: Float = -1 }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            // Opaque to the optimizer, so the products are computed at run time.
            let small = Float(bitPattern: UInt32(ProcessInfo.processInfo.environment["SAMTRAIN_NEVER_SET"].map { _ in 0 } ?? 0x0080_0000))
            box.before = Self.product(small, 0.5)
            FloatingPointMode.flushSubnormals()
            box.after = Self.product(small, 0.25)
            done.signal()
        }
        thread.start()
        done.wait()
        XCTAssertTrue(box.before.isSubnormal, "\(box.before)")
        XCTAssertEqual(box.after, 0)
    }

    /// A product the optimizer cannot fold, share or move across the mode change.
    @inline(never) static func product(_ a: Float, _ b: Float) -> Float {
        var x = a
        withUnsafeMutablePointer(to: &x) { p in p.pointee *= b }
        return x
    }
}
