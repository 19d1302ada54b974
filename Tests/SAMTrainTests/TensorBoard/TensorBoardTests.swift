import Foundation
import XCTest
@testable import SAMTrain

final class TensorBoardTests: XCTestCase {
    /// CRC-32C against the published check value and RFC 3720's vectors; the masked form and
    /// the record framing byte by byte; an Event's protobuf bytes written out by hand.
    func testCRC32CFramingAndEventBytes() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.masked(Array("123456789".utf8)), 0xC78A_B0E5)
        XCTAssertEqual(CRC32C.masked([]), 0xA282_EAD8)   // mask(0)

        let framed = TFRecord.frame(Array("abc".utf8))
        XCTAssertEqual(framed, [3, 0, 0, 0, 0, 0, 0, 0] + le(0x0E49_99B0) + Array("abc".utf8) + le(0x21F1_576E))
        XCTAssertEqual(TFRecord.frame([]), [UInt8](repeating: 0, count: 8) + le(0x0798_0329) + le(0xA282_EAD8))

        // wall_time 1.5 (field 1, fixed64), step 3 (field 2, varint), summary (field 5) holding
        // one value {tag "a" (field 1), simple_value 2.0 (field 2, fixed32)}.
        let event = TensorBoardEvent(wallTime: 1.5, step: 3, what: .scalars([("a", 2)]))
        XCTAssertEqual(event.encoded, [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x10, 0x03,
                                       0x2A, 0x0A, 0x0A, 0x08, 0x0A, 0x01, 0x61, 0x15, 0, 0, 0, 0x40])
        // file_version (field 3); step 0 is protobuf's default and is left out.
        XCTAssertEqual(TensorBoardEvent.fileVersion(wallTime: 0).encoded, [0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x1A, 13] + Array("brain.Event:2".utf8))
        // A step beyond 2⁷ takes several varint bytes; a negative one ten.
        XCTAssertEqual(Array(TensorBoardEvent(wallTime: 0, step: 300, what: .scalars([])).encoded[9...]), [0x10, 0xAC, 0x02, 0x2A, 0x00])
        XCTAssertEqual(TensorBoardEvent(wallTime: 0, step: -1, what: .scalars([])).encoded.count, 9 + 11 + 2)
    }

    func le(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// A 2-rank run with `--tensorboard`: its event file, read by TensorBoard's own reader,
    /// holds exactly the numbers of metrics.jsonl under `<kind>/<key>` at the records' steps.
    func testEventFilesHoldMetricsJSONLAsReadByTensorBoard() throws {
        try Subprocess.requireFashionMNIST()
        let root = Subprocess.temporaryDirectory("samtrain-tb")
        defer { try? FileManager.default.removeItem(at: root) }
        let out = root.appendingPathComponent("run").path, tb = root.appendingPathComponent("tb").path
        let r = try Subprocess.mpirun(2, ["train", "--model", "mlp", "--epochs", "2", "--train-subset", "512", "--batch-size", "64",
                                          "--test-subset", "200", "--log-every", "2", "--out", out, "--tensorboard", tb])
        XCTAssertEqual(r.status, 0, r.output)
        let files = try FileManager.default.contentsOfDirectory(atPath: tb)
        XCTAssertEqual(files.count, 1, "\(files)")
        let name = try XCTUnwrap(files.first)
        XCTAssertNotNil(name.range(of: #"^events\.out\.tfevents\.[0-9]{10}\."# + NSRegularExpression.escapedPattern(for: TensorBoardWriter.hostName) + "$",
                                   options: .regularExpression), name)

        var expected: [String: [Int: Double]] = [:]
        for line in try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n") {
            let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let step = try XCTUnwrap(record["step"] as? Int)
            func add(_ object: [String: Any], _ prefix: String) {
                for (k, v) in object where k != "step" && k != "kind" {
                    if let nested = v as? [String: Any] { add(nested, prefix + "/" + k) } else if let n = v as? Double { expected[prefix + "/" + k, default: [:]][step] = n }
                }
            }
            add(record, try XCTUnwrap(record["kind"] as? String))
        }
        XCTAssertEqual(expected["epoch/test_acc"]?.count, 2)
        XCTAssertEqual(expected["step/loss"]?.count, 6, "3 logged steps per epoch of 8")
        XCTAssertNotNil(expected["step/seconds_per_step/forward"])

        let read = try TensorBoardReader.scalars(logdir: tb)
        guard let runs = read else { return }
        XCTAssertEqual(runs.keys.sorted(), ["."])
        let scalars = try XCTUnwrap(runs["."])
        XCTAssertEqual(scalars.fileVersion, "brain.Event:2")
        XCTAssertEqual(Set(scalars.values.keys), Set(expected.keys))
        for (tag, points) in expected {
            let got = scalars.values[tag] ?? [:]
            XCTAssertEqual(Set(got.keys), Set(points.keys), tag)
            for (step, value) in points {
                let v = try XCTUnwrap(got[step], "\(tag) at \(step)")
                XCTAssertEqual(v, Double(Float(value)), accuracy: abs(value) * 1e-6, "\(tag) at step \(step)")
            }
        }
    }
}

/// Reads event files with Python's `tensorboard` package (installed with pip when missing):
/// for each run under `logdir` (TensorBoard's EventMultiplexer), the first event's
/// file_version and every scalar as tag → step → value.
enum TensorBoardReader {
    struct Run { var fileVersion: String; var values: [String: [Int: Double]] }

    /// nil (after an XCTSkip-worthy reason is printed) when the package cannot be installed.
    static func scalars(logdir: String) throws -> [String: Run]? {
        let probe = try Subprocess.run("/usr/bin/env", ["python3", "-c", "import tensorboard"])
        if probe.status != 0 {
            let install = try Subprocess.run("/usr/bin/env", ["python3", "-m", "pip", "install", "-q", "tensorboard"], timeout: 300)
            if install.status != 0 { throw XCTSkip("Python's tensorboard package is not installable here: \(install.output.suffix(400))") }
        }
        let script = """
        import glob, json, os, sys
        from tensorboard.backend.event_processing import event_multiplexer, event_file_loader
        m = event_multiplexer.EventMultiplexer(size_guidance={"scalars": 0})
        m.AddRunsFromDirectory(sys.argv[1])
        m.Reload()
        out = {}
        for run, tags in m.Runs().items():
            first = next(iter(event_file_loader.EventFileLoader(sorted(glob.glob(os.path.join(sys.argv[1], run, "events.out.tfevents.*")))[0]).Load()))
            acc = m.GetAccumulator(run)
            out[run] = {"file_version": first.file_version,
                        "values": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]}}
        print(json.dumps(out))
        """
        let r = try Subprocess.run("/usr/bin/env", ["python3", "-c", script, logdir], timeout: 120)
        guard r.status == 0 else {
            XCTFail("TensorBoard could not read \(logdir): \(r.output)")
            return nil
        }
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: [String: Any]])
        return try json.mapValues { run in
            let values = try XCTUnwrap(run["values"] as? [String: [[Double]]])
            return Run(fileVersion: run["file_version"] as? String ?? "",
                       values: values.mapValues { Dictionary($0.map { (Int($0[0]), $0[1]) }) { a, _ in a } })
        }
    }
}
