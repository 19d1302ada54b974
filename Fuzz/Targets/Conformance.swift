// libFuzzer target: a conformance vector file.
import Foundation
import SAMTrain

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    _ = try? ConformanceCase(data: Data(bytes: data, count: count), source: "fuzz.json")
    return 0
}
