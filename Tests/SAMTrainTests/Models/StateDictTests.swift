import Foundation
import XCTest
@testable import SAMTrain

/// Loading a state_dict (docs/algorithms.md §7.9): exact values, dtype conversion, and the
/// strict rules with their one message listing every problem.
final class StateDictTests: XCTestCase {
    /// A cnn with seeded weights and running statistics away from 0 / 1.
    func trainedCNN(classes: Int = 10, seed: UInt64 = 1) -> Sequential {
        let model = Architecture.cnn.build(inputShape: [1, 12, 12], classes: classes)
        model.initialize(seed: seed)
        var rng = SplitMix64(seed: seed + 100)
        for i in 0..<model.store.buffers.count { model.store.buffers.data[i] = rng.uniform(0.5, 1.5) }
        return model
    }

    func load(_ file: SafeTensorsFile, into model: Sequential, exclude: String? = nil, freshHead: Bool = false,
              duplicate: Bool = false) throws -> StateDict.Report {
        try StateDict(bytes: file.encoded(duplicate: duplicate), source: "w.safetensors")
            .load(into: model, named: "cnn", exclude: exclude, freshHead: freshHead)
    }

    func testLoadsEveryValueExactlyAndIgnoresTheStepCounters() throws {
        let source = trainedCNN(seed: 1), target = trainedCNN(seed: 2)
        let report = try load(.stateDict(of: source), into: target)
        XCTAssertEqual(source.store.values.array, target.store.values.array)
        XCTAssertEqual(source.store.buffers.array, target.store.buffers.array)
        XCTAssertEqual(report.loaded.count, source.store.parameters.count + source.store.bufferSlots.count)
        XCTAssertEqual(report.ignored.map(\.name), ["1.num_batches_tracked", "11.num_batches_tracked", "4.num_batches_tracked", "8.num_batches_tracked"])
        XCTAssertTrue(report.fresh.isEmpty)
    }

    func testHalfBfloatAndDoubleTensorsAreConverted() throws {
        let target = trainedCNN(seed: 2)
        var file = SafeTensorsFile.stateDict(of: trainedCNN(seed: 1))
        let slot = target.store.parameters.last!   // the head's bias: 10 values
        let values: [Float] = [0.5, -1.25, 3, 0.125, -2, 1, 0, 7, -0.75, 2.5]   // exact in every format
        for dtype in ["F16", "BF16", "F64"] {
            file.tensors.removeAll { $0.name == slot.name }
            switch dtype {
            case "F16": file.add(slot.name, float16: values)
            case "BF16": file.add(slot.name, bfloat16: values)
            default: file.add(slot.name, float64: values.map(Double.init))
            }
            _ = try load(file, into: target)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: target.store.values.data + slot.offset, count: slot.count)), values, dtype)
        }
    }

    func testEveryProblemIsListedInOneMessage() throws {
        var file = SafeTensorsFile.stateDict(of: trainedCNN())
        file.tensors.removeAll { $0.name == "4.weight" || $0.name == "8.running_mean" }     // missing
        file.add("extra.weight", float32: [1, 2])                                            // unexpected
        let i = file.tensors.firstIndex { $0.name == "0.weight" }!
        file.tensors[i].shape = [32, 1, 9, 1]                                                // wrong shape (same bytes)
        let j = file.tensors.firstIndex { $0.name == "1.bias" }!
        file.tensors[j] = .init(name: "1.bias", dtype: "I32", shape: [32], bytes: [UInt8](repeating: 0, count: 128))
        XCTAssertThrowsError(try load(file, into: trainedCNN())) { error in
            let message = (error as! SAMTrainError).message
            for fragment in ["w.safetensors: does not fit --model cnn", "missing 2 tensor(s) of the model: 4.weight, 8.running_mean",
                             "0.weight is [32, 1, 9, 1] in the file, [32, 1, 3, 3] in the model",
                             "1.bias is int32, the model needs floats", "1 tensor(s) the model does not have: extra.weight", "--init-exclude"] {
                XCTAssertTrue(message.contains(fragment), "'\(fragment)' not in: \(message)")
            }
        }
    }

    func testDuplicateNamesAndForeignFilesAreRefused() throws {
        let file = SafeTensorsFile.stateDict(of: trainedCNN())
        XCTAssertThrowsError(try load(file, into: trainedCNN(), duplicate: true)) { error in
            XCTAssertTrue((error as! SAMTrainError).message.contains("names tensor 0.weight twice"), "\(error)")
        }
        var other = SafeTensorsFile()
        other.add("conv1.weight", float32: [1, 2, 3, 4])
        XCTAssertThrowsError(try load(other, into: trainedCNN())) { error in
            let message = (error as! SAMTrainError).message
            XCTAssertTrue(message.contains("holds none of --model cnn's tensors") && message.contains("conv1.weight"), message)
        }
    }

    /// Fine-tuning: a 10-class head into a 5-class model starts fresh (the model's seeded
    /// values), and only where that is allowed; --init-exclude starts chosen tensors fresh.
    func testHeadOfAnotherClassCountAndExcludedTensorsStartFresh() throws {
        let file = SafeTensorsFile.stateDict(of: trainedCNN(classes: 10))
        let target = trainedCNN(classes: 5, seed: 3), seeded = target.store.values.array
        let report = try load(file, into: target, freshHead: true)
        XCTAssertEqual(report.fresh.map(\.name), ["17.weight", "17.bias"])
        XCTAssertTrue(report.fresh[0].why.contains("10 classes in the file, 5 in the data"), report.fresh[0].why)
        let head = target.store.parameters.suffix(2)
        XCTAssertEqual(Array(target.store.values.array[head.first!.offset...]), Array(seeded[head.first!.offset...]))
        XCTAssertThrowsError(try load(file, into: trainedCNN(classes: 5), freshHead: false)) { error in
            XCTAssertTrue((error as! SAMTrainError).message.contains("17.weight is [10, 256] in the file, [5, 256] in the model"), "\(error)")
        }

        let excluded = trainedCNN(seed: 4), before = excluded.store.values.array
        let r = try load(file, into: excluded, exclude: "^15\\.")
        XCTAssertEqual(r.fresh.map(\.name), ["15.weight", "15.bias"])
        let fc = excluded.store.parameters.first { $0.name == "15.weight" }!
        XCTAssertEqual(excluded.store.values.array[fc.offset], before[fc.offset])
        XCTAssertThrowsError(try StateDict.pattern("(unclosed")) { error in
            XCTAssertTrue((error as! SAMTrainError).message.contains("--init-exclude (unclosed: not a valid regular expression"), "\(error)")
        }
    }

    /// A samtrain checkpoint read as a state_dict: its optimizer and per-rank state are ignored.
    func testSamtrainCheckpointLoadsAsAStateDict() throws {
        let source = trainedCNN()
        let optimizer = SGD(count: source.store.count, momentum: 0.9, nesterov: false, weightDecay: 0)
        let checkpoint = Checkpoint(model: source, optimizer: optimizer, metadata: [:], rankBuffers: [source.store.buffers.array])
        let target = trainedCNN(seed: 9)
        let report = try StateDict(bytes: SafeTensors.encode(checkpoint.file), source: "c.safetensors")
            .load(into: target, named: "cnn", freshHead: true)
        XCTAssertEqual(target.store.values.array, source.store.values.array)
        XCTAssertEqual(report.ignored.count, source.store.parameters.count + source.store.bufferSlots.count)
        XCTAssertTrue(report.lines.joined().contains("optimizer.*, samtrain.*"), "\(report.lines)")
    }
}

/// A ViT state_dict of another depth or width: one message naming the mismatch.
final class VisionTransformerStateDictTests: XCTestCase {
    func state(_ configuration: VisionTransformer.Configuration) -> SafeTensorsFile {
        .stateDict(of: VisionTransformer.build(configuration: configuration, inputShape: [1, 28, 28], classes: 10))
    }

    func testAnotherDepthOrWidthIsNamed() throws {
        let target = Architecture.vitT4.build(inputShape: [1, 28, 28], classes: 10)
        let shallow = VisionTransformer.Configuration(width: 192, depth: 6, heads: 3, patch: 4)
        XCTAssertThrowsError(try StateDict(bytes: state(shallow).encoded(), source: "vit6.safetensors")
            .load(into: target, named: "vit-t4", freshHead: true)) { error in
            let message = (error as! SAMTrainError).message
            XCTAssertTrue(message.contains("the file has 6 blocks.K modules, the model 12") && message.contains("blocks.6.norm1.weight"), message)
        }
        let narrow = VisionTransformer.Configuration(width: 96, depth: 12, heads: 3, patch: 4)
        XCTAssertThrowsError(try StateDict(bytes: state(narrow).encoded(), source: "vit96.safetensors")
            .load(into: target, named: "vit-t4", freshHead: true)) { error in
            let message = (error as! SAMTrainError).message
            XCTAssertTrue(message.contains("cls_token is [1, 1, 96] in the file, [1, 1, 192] in the model"), message)
        }
    }
}
