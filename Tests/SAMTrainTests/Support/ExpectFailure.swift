import XCTest

extension Subprocess {
    /// Runs `samtrain args` under `mpirun -np 2` and asserts what the robustness bar asks of bad
    /// input: a non-zero exit within `seconds`, exactly one error line naming every fragment,
    /// and no trap or stack trace on any rank.
    static func expectFailure(_ args: [String], naming fragments: [String], timeout: Double = 30, within seconds: Double? = 10,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try mpirun(2, args, timeout: timeout)
        XCTAssertFalse(r.timedOut, "hung: \(args)", file: file, line: line)
        XCTAssertNotEqual(r.status, 0, "exit 0 for \(args)", file: file, line: line)
        if let seconds { XCTAssertLessThan(r.seconds, seconds, "took \(r.seconds) s: \(args)", file: file, line: line) }
        let errors = r.stderr.split(separator: "\n").filter { $0.contains("samtrain: error") }
        XCTAssertEqual(errors.count, 1, "expected one message for \(args), got:\n\(r.output)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(errors.first?.contains(fragment) == true, "'\(fragment)' not in: \(errors)", file: file, line: line)
        }
        for trace in ["Fatal error", "Stack dump", "backtrace", "Segmentation"] {
            XCTAssertFalse(r.output.contains(trace), "\(trace) in output of \(args):\n\(r.output)", file: file, line: line)
        }
    }
}
