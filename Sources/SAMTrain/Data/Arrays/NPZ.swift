import CZlib
import Foundation

/// NumPy's `.npz`: a zip archive of `<name>.npy` members, stored (`np.savez`) or deflated
/// (`np.savez_compressed`). The zip container is read here with zlib rather than with a zip
/// library: ZIPFoundation 0.9.20 traps on hostile offsets (an in-memory archive's directory
/// past the end, a zip64 offset of 2⁶³) and loops forever on a deflate stream that runs to the
/// end of the file. Every size and offset in
/// the archive is checked against the bytes present before it is used; each member's
/// decompressed size is held to what its entry declares (which itself cannot exceed what
/// deflate can encode from the member's compressed bytes), members may not overlap, and each
/// member's CRC-32 is checked.
public enum NPZ {
    /// Most bytes all of an archive's arrays may hold together.
    static let maximumTotalSize = 64 << 30
    /// Deflate's best case: 258 bytes from 2 bits. A member declaring more is a zip bomb.
    static let maximumDeflateRatio = 1032

    /// Reads every array of the `.npz` at `path`, in the archive's order. The file is mapped,
    /// not read: each array's bytes are copied (or inflated) once, straight into the result.
    /// - Throws: `SAMTrainError` naming `path` (and the array or member at fault).
    public static func read(path: String) throws -> [NumericArray] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SAMTrainError("\(path): cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SAMTrainError("\(path): cannot read: \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw SAMTrainError("\(path): not a regular file") }
        let size = Int(info.st_size)
        guard size > 0 else { return try decode(UnsafeRawBufferPointer(start: nil, count: 0), source: path) }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw SAMTrainError("\(path): cannot map the file: \(String(cString: strerror(errno)))")
        }
        defer { munmap(base, size) }
        return try decode(UnsafeRawBufferPointer(start: base, count: size), source: path)
    }

    /// Decodes an `.npz` held in memory (tests, fuzzing); `source` names it in messages.
    public static func decode(_ bytes: [UInt8], source: String) throws -> [NumericArray] {
        try bytes.withUnsafeBytes { try decode($0, source: source) }
    }

    static func decode(_ zip: UnsafeRawBufferPointer, source: String) throws -> [NumericArray] {
        let members = try ZipDirectory.members(of: zip, source: source)
        return try members.map { try array($0, in: zip, source: source) }
    }

    /// One member's array: its `.npy` header is inflated first, then the data straight into
    /// an array of the size the header gives.
    static func array(_ member: ZipDirectory.Member, in zip: UnsafeRawBufferPointer, source: String) throws -> NumericArray {
        let name = String(member.name.dropLast(4))
        let context = "\(source): array \(name)"
        let input = UnsafeRawBufferPointer(rebasing: zip[member.dataStart..<(member.dataStart + member.compressedSize)])
        let stream = try MemberStream(input: input, member: member,
                                      context: "\(source): not a valid .npz (zip) file: member '\(member.name)'")
        let declared = member.uncompressedSize
        do {
            var head = [UInt8](repeating: 0, count: min(12, declared))
            try head.withUnsafeMutableBytes { try stream.read(into: $0) }
            let pre = try head.withUnsafeBytes { try NPY.preamble($0, context: context) }
            let headerEnd = pre.size + pre.headerLength
            guard headerEnd <= declared else {
                throw SAMTrainError("\(context): truncated: the .npy header says it is \(pre.headerLength) bytes, only \(declared - pre.size) follow")
            }
            if head.count < headerEnd {
                let have = head.count
                head += [UInt8](repeating: 0, count: headerEnd - have)
                try head.withUnsafeMutableBytes { try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[have...])) }
            }
            let layout = try head.withUnsafeBytes {
                try NPY.layout(header: UnsafeRawBufferPointer(rebasing: $0[pre.size..<headerEnd]), utf8: pre.utf8,
                               dataOffset: headerEnd, context: context)
            }
            try NPY.checkDataSize(layout, present: declared - headerEnd, context: context)
            // Bytes of data already read with the preamble (a header shorter than 2 bytes).
            let early = head[headerEnd...]
            var data = try [UInt8](unsafeUninitializedCapacity: layout.dataSize) { buffer, count in
                let raw = UnsafeMutableRawBufferPointer(buffer)
                raw.copyBytes(from: early)
                try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[early.count...]))
                count = layout.dataSize
            }
            try stream.finish()
            layout.toLittleEndian(&data)
            return NumericArray(name: name, type: layout.type, shape: layout.shape, bytes: data)
        } catch let error as SAMTrainError {
            // Damaged bytes are reported as damage, not as whatever they happen to look like.
            if let damage = stream.damage() { throw damage }
            throw error
        }
    }
}

/// A zip archive's central directory, read and checked against the bytes present.
enum ZipDirectory {
    /// A member whose local header, name, sizes and position all agree and lie in the archive.
    struct Member {
        var name: String
        /// 0 (stored) or 8 (deflate).
        var method: Int
        var crc: UInt32
        var compressedSize: Int
        var uncompressedSize: Int
        var localStart: Int
        var dataStart: Int
    }

    static func members(of z: UnsafeRawBufferPointer, source: String) throws -> [Member] {
        func invalid(_ why: String) -> SAMTrainError { SAMTrainError("\(source): not a valid .npz (zip) file: \(why)") }
        let n = z.count
        // Fixed-width little-endian fields; each caller has checked `o + width <= n`.
        func u16(_ o: Int) -> Int { Int(z[o]) | Int(z[o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
        func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }
        /// A 64-bit size or offset from the file, kept only if it lies within it.
        func within(_ v: UInt64, _ limit: Int) -> Int? { v <= UInt64(limit) ? Int(v) : nil }

        // End of central directory: 22 bytes and a comment of up to 65,535 that ends the file.
        guard n >= 22 else { throw invalid("\(n) bytes, too short for a zip archive (truncated, or not a zip file)") }
        var eocd: Int?
        for p in stride(from: n - 22, through: max(0, n - 22 - 0xFFFF), by: -1)
        where u32(p) == 0x0605_4B50 && p + 22 + u16(p + 20) == n {
            eocd = p
            break
        }
        guard let p = eocd else { throw invalid("no end-of-central-directory record (truncated, or not a zip file)") }
        guard u16(p + 4) == 0, u16(p + 6) == 0, u16(p + 8) == u16(p + 10) else { throw invalid("the archive spans several disks") }
        var count = UInt64(u16(p + 10)), size = UInt64(u32(p + 12)), offset = UInt64(u32(p + 16))
        var end = p
        // Zip64: a locator just before the record points at a 56-byte zip64 end record.
        if p >= 20 && u32(p - 20) == 0x0706_4B50 {
            guard p >= 20 + 56, let r = within(u64(p - 12), p - 20 - 56), u32(r) == 0x0606_4B50 else {
                throw invalid("the zip64 end-of-central-directory locator points outside the archive")
            }
            guard u32(r + 16) == 0, u32(r + 20) == 0, u64(r + 24) == u64(r + 32) else { throw invalid("the archive spans several disks") }
            (count, size, offset, end) = (u64(r + 32), u64(r + 40), u64(r + 48), r)
        } else if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            throw invalid("the zip64 end-of-central-directory record is missing")
        }
        guard let cdStart = within(offset, end), let cdSize = within(size, end - cdStart), cdStart + cdSize == end else {
            throw invalid("the central directory's offset and size do not match where it ends (truncated or corrupt)")
        }
        guard count <= UInt64(cdSize / 46) else { throw invalid("\(count) entries cannot fit in a central directory of \(cdSize) bytes") }

        var members: [Member] = []
        var names = Set<String>()
        var o = cdStart
        for k in 0..<Int(count) {
            guard o + 46 <= end, u32(o) == 0x0201_4B50 else { throw invalid("central directory entry \(k + 1) is corrupt") }
            let flags = u16(o + 8), method = u16(o + 10), crc = u32(o + 16)
            let nameLength = u16(o + 28), extraLength = u16(o + 30), commentLength = u16(o + 32)
            let nameStart = o + 46, extraStart = nameStart + nameLength, next = extraStart + extraLength + commentLength
            guard next <= end else { throw invalid("central directory entry \(k + 1) runs past the directory") }
            let nameBytes = UnsafeRawBufferPointer(rebasing: z[nameStart..<extraStart])
            guard let name = String(validating: nameBytes, as: UTF8.self) else { throw invalid("member \(k + 1)'s name is not UTF-8") }
            let quoted = "member '\(name)'"
            guard flags & 0x41 == 0, method != 99 else { throw invalid("\(quoted) is encrypted") }
            guard name.hasSuffix(".npy"), name.count > 4 else {
                throw invalid("\(quoted) is not a .npy array (an .npz holds only <name>.npy members)")
            }
            guard names.insert(name).inserted else { throw invalid("\(quoted) appears twice") }
            guard method == 0 || method == 8 else { throw invalid("\(quoted) uses compression method \(method) (samtrain reads stored and deflate)") }

            // Sizes and offset; those saturated at 0xFFFFFFFF are in the zip64 extra field, in order.
            var fields = [UInt64(u32(o + 24)), UInt64(u32(o + 20)), UInt64(u32(o + 42))]
            if fields.contains(0xFFFF_FFFF) {
                var e = extraStart, zip64: Int?
                while e + 4 <= extraStart + extraLength {
                    let length = u16(e + 2)
                    guard e + 4 + length <= extraStart + extraLength else { throw invalid("\(quoted) has a corrupt extra field") }
                    if u16(e) == 1 { zip64 = e }
                    e += 4 + length
                }
                guard let z64 = zip64 else { throw invalid("\(quoted) lacks its zip64 extra field") }
                var v = z64 + 4
                for i in fields.indices where fields[i] == 0xFFFF_FFFF {
                    guard v + 8 <= z64 + 4 + u16(z64 + 2) else { throw invalid("\(quoted) has a short zip64 extra field") }
                    fields[i] = u64(v)
                    v += 8
                }
            }
            guard let compressed = within(fields[1], n), let localStart = within(fields[2], cdStart) else {
                throw invalid("\(quoted) lies outside the archive (truncated or corrupt)")
            }
            // The declared size is checked against what the compressed bytes can hold before
            // anything is allocated from it.
            let limit = method == 0 ? compressed : min(compressed * NPZ.maximumDeflateRatio, NPZ.maximumTotalSize)
            guard let uncompressed = within(fields[0], limit) else {
                throw invalid("\(quoted) declares \(fields[0]) bytes from \(compressed) \(method == 0 ? "stored bytes" : "compressed bytes, more than deflate can encode (a zip bomb?)")")
            }
            guard method != 0 || uncompressed == compressed else { throw invalid("\(quoted) is stored but its two sizes differ") }

            // The local header must agree, and the data must end before the central directory.
            guard localStart + 30 <= cdStart, u32(localStart) == 0x0403_4B50 else {
                throw invalid("the local header of \(quoted) is missing or corrupt")
            }
            let localName = localStart + 30, dataStart = localName + u16(localStart + 26) + u16(localStart + 28)
            guard dataStart <= cdStart, compressed <= cdStart - dataStart else {
                throw invalid("the data of \(quoted) runs past the end of the members (truncated or corrupt)")
            }
            guard u16(localStart + 8) == method, u16(localStart + 26) == nameLength,
                  UnsafeRawBufferPointer(rebasing: z[localName..<(localName + nameLength)]).elementsEqual(nameBytes) else {
                throw invalid("the local header of \(quoted) disagrees with the central directory")
            }
            members.append(Member(name: name, method: method, crc: crc, compressedSize: compressed, uncompressedSize: uncompressed,
                                  localStart: localStart, dataStart: dataStart))
            o = next
        }
        guard o == end else { throw invalid("\(end - o) unexpected bytes after the central directory's last entry") }

        // Overlapping members would let one compressed run be inflated many times.
        let byPosition = members.sorted { $0.localStart < $1.localStart }
        for (a, b) in zip(byPosition, byPosition.dropFirst()) where a.dataStart + a.compressedSize > b.localStart {
            throw invalid("members '\(a.name)' and '\(b.name)' overlap")
        }
        var total = 0
        for m in members {
            total += m.uncompressedSize   // each is at most maximumTotalSize: no overflow before the check
            guard total <= NPZ.maximumTotalSize else { throw invalid("its members declare more than \(NPZ.maximumTotalSize) bytes in all") }
        }
        return members
    }
}

/// One member's bytes, copied or inflated as they are asked for, with their CRC-32. zlib
/// keeps a pointer back to its `z_stream`, so the stream lives at a fixed address.
final class MemberStream {
    private let input: UnsafeRawBufferPointer
    private let member: ZipDirectory.Member
    /// "<file>: not a valid .npz (zip) file: member 'x.npy'", for the container's errors.
    private let context: String
    private var z: UnsafeMutablePointer<z_stream>?
    /// Input bytes handed to zlib (or copied, when stored).
    private var inputUsed = 0
    private var produced = 0
    private var crc: UInt = 0
    private var ended = false
    /// A read or check of this stream has thrown: the container is at fault.
    private var failed = false

    init(input: UnsafeRawBufferPointer, member: ZipDirectory.Member, context: String) throws {
        self.input = input
        self.member = member
        self.context = context
        guard member.method == 8 else { return }
        let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        z.initialize(to: z_stream())
        guard inflateInit2_(z, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            z.deallocate()
            throw SAMTrainError("\(context): zlib could not start")
        }
        self.z = z
    }

    deinit {
        if let z {
            inflateEnd(z)
            z.deallocate()
        }
    }

    private func error(_ why: String) -> SAMTrainError {
        failed = true
        return SAMTrainError("\(context): \(why)")
    }

    /// Fills `out` with the member's next bytes; the callers never ask past the declared size.
    func read(into out: UnsafeMutableRawBufferPointer) throws {
        guard out.count > 0, let base = out.baseAddress else { return }
        precondition(out.count <= member.uncompressedSize - produced, "MemberStream: read past the declared size")
        if let z {
            var done = 0
            while done < out.count {
                guard !ended else {
                    throw error("truncated: it decompresses to \(produced + done) bytes, not the \(member.uncompressedSize) it declares")
                }
                feed(z)
                let want = min(out.count - done, Int(UInt32.max))
                z.pointee.next_out = (base + done).assumingMemoryBound(to: Bytef.self)
                z.pointee.avail_out = UInt32(want)
                let status = inflate(z, Z_NO_FLUSH)
                done += want - Int(z.pointee.avail_out)
                try check(status)
            }
        } else {
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: input[inputUsed..<(inputUsed + out.count)]))
            inputUsed += out.count
        }
        crc = crc32_z(crc, base.assumingMemoryBound(to: Bytef.self), out.count)
        produced += out.count
    }

    /// The whole input is available: give zlib the next (at most 4 GiB) part when it has used
    /// the last.
    private func feed(_ z: UnsafeMutablePointer<z_stream>) {
        guard z.pointee.avail_in == 0, inputUsed < input.count else { return }
        let part = min(input.count - inputUsed, Int(UInt32.max))
        z.pointee.next_in = UnsafeMutablePointer(mutating: (input.baseAddress! + inputUsed).assumingMemoryBound(to: Bytef.self))
        z.pointee.avail_in = UInt32(part)
        inputUsed += part
    }

    private func check(_ status: Int32) throws {
        switch status {
        case Z_OK: return
        case Z_STREAM_END: ended = true
        case Z_BUF_ERROR:
            // No progress possible: every compressed byte is used and the stream has not ended.
            throw error("truncated: its deflate stream ends early")
        default:
            let message = z?.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
            throw error("corrupt deflate data (\(message))")
        }
    }

    /// After the declared bytes: the stream must end there with all its input used, and the
    /// CRC-32 must match the directory's.
    func finish() throws {
        if let z {
            var extra: UInt8 = 0
            while !ended {
                feed(z)
                let status = withUnsafeMutablePointer(to: &extra) { p in
                    z.pointee.next_out = p
                    z.pointee.avail_out = 1
                    return inflate(z, Z_NO_FLUSH)
                }
                guard z.pointee.avail_out == 1 else {
                    throw error("it decompresses to more than the \(member.uncompressedSize) bytes it declares")
                }
                try check(status)
            }
            guard inputUsed == input.count, z.pointee.avail_in == 0 else {
                throw error("\(input.count - inputUsed + Int(z.pointee.avail_in)) bytes of compressed data follow the end of its deflate stream")
            }
        }
        guard UInt32(truncatingIfNeeded: crc) == member.crc else { throw error("CRC-32 mismatch (the file is corrupt)") }
    }

    /// Why the container is at fault, if it is, when reading an array failed: the rest of the
    /// member is read (at most its declared size) and checked. Nil when the member's bytes are
    /// sound, so the array's own error stands.
    func damage() -> SAMTrainError? {
        guard !failed else { return nil }
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        do {
            while produced < member.uncompressedSize {
                let n = min(scratch.count, member.uncompressedSize - produced)
                try scratch.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<n])) }
            }
            try finish()
            return nil
        } catch {
            return error as? SAMTrainError
        }
    }
}
