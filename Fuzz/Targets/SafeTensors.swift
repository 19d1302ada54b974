// libFuzzer target: a checkpoint file (safetensors decoding, then the metadata's validation),
// restored into a small model when it decodes, its epoch so far read as a resume reads it, and
// its recorded settings read as `samtrain sharpness` reads them (the model, the training split).
import Foundation
import SAMTrain

let model = Architecture.mlp.build(inputShape: [1, 2, 2], classes: 2)
let optimizer = SGD(count: model.store.count, momentum: 0.9, nesterov: false, weightDecay: 0)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: count))
    if let checkpoint = try? Checkpoint(bytes: bytes, source: "fuzz.safetensors") {
        try? checkpoint.restore(into: model, optimizer: optimizer, source: "fuzz.safetensors", rank: 1)
        _ = EpochProgress(metadata: checkpoint.metadata, rank: 1)
        let settings = checkpoint.settings
        _ = try? ModelConfiguration(recorded: settings, source: "fuzz.safetensors")
        _ = try? CheckpointModel.split(settings, source: "fuzz.safetensors")
    }
    return 0
}
