// libFuzzer target: a CIFAR-10 and a CIFAR-100 batch file holding as many records as the
// input's length suggests (one more when it is not a whole number of records).
import Foundation
import SAMTrain

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: count))
    for kind in [DatasetKind.cifar10, .cifar100] {
        let format = CIFAR.format(kind)
        let records = bytes.count / format.recordBytes + (bytes.count % format.recordBytes == 0 ? 0 : 1)
        var pixels = [UInt8](repeating: 0, count: records * CIFAR.imageBytes)
        var labels = [Int32](repeating: 0, count: records)
        _ = try? CIFAR.decode(bytes, records: records, format, path: "fuzz.bin", pixels: &pixels, labels: &labels, at: 0)
    }
    return 0
}
