// libFuzzer target: an IDX file (raw or gzip) as images (3 dimensions) and as labels (1).
import Foundation
import SAMTrain

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: count))
    for rank in [1, 3] { _ = try? IDXReader.parse(file: bytes, path: "fuzz.idx", expectedRank: rank) }
    return 0
}
