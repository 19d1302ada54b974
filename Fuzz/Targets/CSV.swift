// libFuzzer target: a CSV file as `samtrain plot` reads it, every column of every row looked up.
import Foundation
import SAMTrain

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let table = try? CSVTable(data: Data(bytes: data, count: count), source: "fuzz.csv") else { return 0 }
    for name in table.columns {
        guard let i = try? table.column(name, source: "fuzz.csv") else { continue }
        for row in table.rows { _ = Double(row[i]) }
    }
    return 0
}
