// libFuzzer target: a user's safetensors file, read as a dataset (`--dataset arrays`: decoding,
// every array's check, the channel-major datasets) and as a state_dict (`--init`) for a small cnn.
import Foundation
import SAMTrain

let model = Architecture.cnn.build(inputShape: [1, 4, 4], classes: 2)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: count))
    if let file = try? ArraysFile.decodeSafeTensors(bytes, path: "fuzz.safetensors") {
        _ = file.inspection()
        _ = try? file.datasets()
    }
    if let state = try? StateDict(bytes: bytes, source: "fuzz.safetensors") {
        _ = try? state.load(into: model, named: "cnn", exclude: "^17\\.", freshHead: true)
    }
    return 0
}
