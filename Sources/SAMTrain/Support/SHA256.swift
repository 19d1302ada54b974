import CCrypto

/// SHA-256 of a file's bytes, in hex: what config.json records of the weights a run
/// started from (OpenSSL's implementation).
public enum SHA256Digest {
    public static func hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        bytes.withUnsafeBufferPointer { p in _ = EVP_Digest(p.baseAddress, p.count, &digest, &length, EVP_sha256(), nil) }
        let hex = Array("0123456789abcdef")
        return String(digest.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] })
    }
}
