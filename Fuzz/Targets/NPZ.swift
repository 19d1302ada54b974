// libFuzzer target: an .npz archive (the zip directory, each member's inflate and CRC, each
// .npy header), then every array it decodes read back as integers, floats or strings. The
// input is also decoded as a bare .npy, so the header parser is reached without a zip around it.
import Foundation
import SAMTrain

private func touch(_ a: NumericArray) {
    _ = a.integers()
    _ = a.floats()
    _ = a.strings()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: count))
    if let arrays = try? NPZ.decode(bytes, source: "fuzz.npz") { arrays.forEach(touch) }
    if let array = try? NPY.decode(bytes, name: "fuzz", source: "fuzz.npy") { touch(array) }
    return 0
}
