import Foundation
@testable import SAMTrain

/// Builds safetensors files of any dtype for tests (samtrain itself writes float32 only).
struct SafeTensorsFile {
    struct Tensor {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: [UInt8]
    }
    var tensors: [Tensor] = []
    var metadata: [String: String] = [:]

    mutating func add(_ name: String, uint8 values: [UInt8], shape: [Int]) {
        tensors.append(Tensor(name: name, dtype: "U8", shape: shape, bytes: values))
    }

    mutating func add(_ name: String, int64 values: [Int64], shape: [Int]? = nil) {
        tensors.append(Tensor(name: name, dtype: "I64", shape: shape ?? [values.count],
                              bytes: values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }))
    }

    mutating func add(_ name: String, float32 values: [Float], shape: [Int]? = nil) {
        tensors.append(Tensor(name: name, dtype: "F32", shape: shape ?? [values.count],
                              bytes: values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }))
    }

    mutating func add(_ name: String, float64 values: [Double], shape: [Int]? = nil) {
        tensors.append(Tensor(name: name, dtype: "F64", shape: shape ?? [values.count],
                              bytes: values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }))
    }

    mutating func add(_ name: String, float16 values: [Float], shape: [Int]? = nil) {
        tensors.append(Tensor(name: name, dtype: "F16", shape: shape ?? [values.count],
                              bytes: values.flatMap { v in withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { Array($0) } }))
    }

    mutating func add(_ name: String, bfloat16 values: [Float], shape: [Int]? = nil) {
        // The upper half of the float32 (values chosen to be exact in bfloat16).
        tensors.append(Tensor(name: name, dtype: "BF16", shape: shape ?? [values.count],
                              bytes: values.flatMap { v in withUnsafeBytes(of: UInt16(v.bitPattern >> 16).littleEndian) { Array($0) } }))
    }

    /// The file's bytes; `duplicate` writes the first tensor's header entry a second time.
    func encoded(duplicate: Bool = false) -> [UInt8] {
        var parts: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\"\($0)\":\"\(metadata[$0]!)\"" }
            parts.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        var data: [UInt8] = []
        for t in tensors {
            parts.append("\"\(t.name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
            offset += t.bytes.count
            data += t.bytes
        }
        if duplicate, let first = tensors.first {
            parts.append("\"\(first.name)\":{\"dtype\":\"\(first.dtype)\",\"shape\":[\(first.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[0,\(first.bytes.count)]}")
        }
        let header = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        return withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header + data
    }

    func write(to path: String, duplicate: Bool = false) throws {
        try Data(encoded(duplicate: duplicate)).write(to: URL(fileURLWithPath: path))
    }

    /// A model's state_dict as PyTorch saves it (float32), plus `num_batches_tracked` per BatchNorm.
    static func stateDict(of model: Sequential) -> SafeTensorsFile {
        var file = SafeTensorsFile()
        let store = model.store
        for slot in store.parameters {
            file.add(slot.name, float32: Array(UnsafeBufferPointer(start: store.values.data + slot.offset, count: slot.count)), shape: slot.shape)
        }
        for slot in store.bufferSlots {
            file.add(slot.name, float32: Array(UnsafeBufferPointer(start: store.buffers.data + slot.offset, count: slot.count)), shape: slot.shape)
            if slot.name.hasSuffix("running_var") {
                file.add(String(slot.name.dropLast("running_var".count)) + "num_batches_tracked", int64: [7], shape: [])
            }
        }
        return file
    }
}
