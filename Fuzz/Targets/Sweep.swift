// libFuzzer target: a sweep file, read plain and with its quick settings, and its grid listed.
import Foundation
import SAMTrain

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    for quick in [false, true] {
        if let sweep = try? SweepFile(data: Data(bytes: data, count: count), source: "fuzz.json", quick: quick) {
            _ = sweep.cells.map(\.arguments)
        }
    }
    return 0
}
