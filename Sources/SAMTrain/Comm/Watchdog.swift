import Foundation

/// Ends the job when a collective does not complete within `timeout` seconds because a rank
/// stopped responding without dying (SIGSTOP, a frozen node), or because every rank waits in
/// a collective that never completes, with one message naming the step and the ranks that
/// did not arrive. Blocking MPI calls cannot time out, so the watch runs beside them:
///
/// - every Communicator collective marks this rank as waiting (`waiting(_:)`);
/// - a thread sends each peer a UDP heartbeat every 0.5 s ("rank, step, waiting"), and
///   records the peers' heartbeats: a rank silent for 3 s is stopped or frozen (its
///   threads stop with it), a rank that is alive and not waiting is working (e.g. rank 0
///   writing a large checkpoint) and is waited for;
/// - when this rank has waited longer than `timeout` and some rank is silent, or every rank
///   waits, the lowest responsive rank prints the message and exits 1; mpirun then ends the
///   other ranks (a stopped one included: it sends SIGCONT, SIGTERM, SIGKILL). Checkpoints
///   are renamed into place, so the newest one stays valid.
///
/// Time is the watch's own clock, which stands still while this process does not run: a job
/// suspended as a whole (SIGSTOP to every rank, Slurm's `scontrol suspend`, a paused VM) goes
/// on when continued, even when one rank wakes before another.
///
/// UDP and not MPI: the ranks run MPI_THREAD_FUNNELED (only the main thread calls MPI), and
/// the heartbeats must go on while the main thread is blocked inside MPI.
public final class Watchdog: @unchecked Sendable {
    public let timeout: Double
    let rank: Int
    let size: Int
    let socket: Int32
    var peers: [sockaddr_in?]
    /// Heartbeats: when each peer was last heard of (the watch's clock), and what it said.
    var lastHeard: [Double]
    var peerStep: [Int]
    var peerWaiting: [Bool]

    /// What the main thread does (written by it, read by the watch thread: word-sized values).
    public var step = 0
    var waitingSince = 0.0
    var depth = 0
    /// The newest checkpoint, named when the job ends (under a lock: a String is not one word).
    public var newestCheckpoint: String? {
        get { lock.withLock { checkpoint } }
        set { lock.withLock { checkpoint = newValue } }
    }
    private var checkpoint: String?
    private let lock = NSLock()

    static let heartbeatInterval = 0.5
    static let silentAfter = 3.0
    /// The most the watch's clock advances between two of its turns (0.1 s apart when the
    /// process runs): a longer gap is time this process was suspended.
    static let longestTurn = 1.0

    /// Sets up the heartbeat sockets (collective: every rank calls it) and starts the watch.
    public init(world: Communicator, timeout: Double) {
        self.timeout = timeout
        rank = world.rank
        size = world.size
        socket = Foundation.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        lastHeard = Array(repeating: 0, count: size)
        peerStep = Array(repeating: 0, count: size)
        peerWaiting = Array(repeating: false, count: size)
        peers = Array(repeating: nil, count: size)
        var port: UInt16 = 0
        if socket >= 0 {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = INADDR_ANY
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
            }
            if bound { port = UInt16(bigEndian: address.sin_port) }
            _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
        }
        // Every rank learns every other's host and port.
        let endpoints = world.allgather("\(Communicator.processorName) \(port)")
        let me = Communicator.processorName
        for (r, endpoint) in endpoints.enumerated() where r != rank {
            let parts = endpoint.split(separator: " ")
            guard parts.count == 2, let p = UInt16(parts[1]), p != 0 else { continue }
            peers[r] = Watchdog.resolve(parts[0] == me ? "127.0.0.1" : String(parts[0]), port: p)
        }
        let thread = Thread { [self] in watch() }
        thread.start()
    }

    static func resolve(_ host: String, port: UInt16) -> sockaddr_in? {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let info = result, let address = info.pointee.ai_addr else { return nil }
        defer { freeaddrinfo(result) }
        var a = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
        a.sin_port = port.bigEndian
        return a
    }

    /// Runs a blocking collective, marked as waiting (nested calls count once).
    @inline(__always)
    func waiting<T>(_ body: () -> T) -> T {
        if depth == 0 { waitingSince = PhaseTimer.now() }
        depth += 1
        defer {
            depth -= 1
            if depth == 0 { waitingSince = 0 }
        }
        return body()
    }

    func watch() {
        var nextBeat = 0.0
        var buffer = [UInt8](repeating: 0, count: 128)
        // The clock counts only time this process ran; a wait starts at the turn that sees it.
        var now = 0.0, lastWall = PhaseTimer.now()
        var seenWait = 0.0, waitStart = 0.0
        while true {
            let wall = PhaseTimer.now()
            now += min(wall - lastWall, Watchdog.longestTurn)
            lastWall = wall
            if now >= nextBeat {
                let beat = "\(rank) \(step) \(waitingSince > 0 ? 1 : 0)"
                for r in 0..<size where r != rank {
                    guard var address = peers[r] else { continue }
                    _ = beat.withCString { text in
                        withUnsafePointer(to: &address) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                sendto(socket, text, strlen(text), 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                            }
                        }
                    }
                }
                nextBeat = now + Watchdog.heartbeatInterval
            }
            while socket >= 0 {
                let n = recv(socket, &buffer, buffer.count, 0)
                guard n > 0 else { break }
                let fields = String(decoding: buffer[0..<n], as: UTF8.self).split(separator: " ").compactMap { Int($0) }
                guard fields.count == 3, fields[0] >= 0, fields[0] < size else { continue }
                lastHeard[fields[0]] = now
                peerStep[fields[0]] = fields[1]
                peerWaiting[fields[0]] = fields[2] == 1
            }
            let since = waitingSince
            if since != seenWait {
                seenWait = since
                waitStart = now
            }
            if since > 0, now - waitStart > timeout { expire(waited: now - waitStart, now: now) }
            usleep(100_000)
        }
    }

    /// The collective has waited too long: decide whether the job is stuck, and who says so.
    func expire(waited: Double, now: Double) {
        let silent = (0..<size).filter { $0 != rank && peers[$0] != nil && now - lastHeard[$0] > Watchdog.silentAfter }
        let working = (0..<size).filter { $0 != rank && !silent.contains($0) && !peerWaiting[$0] && peers[$0] != nil }
        // A responsive rank that is not waiting is still working: wait for it.
        guard !silent.isEmpty || working.isEmpty else { return }
        let reporter = (0..<size).first { !silent.contains($0) } ?? rank
        if reporter != rank {
            // The reporter ends the job; end here too if it has not after a grace period.
            if waited > timeout + 10 { _exit(1) }
            return
        }
        let who = silent.isEmpty
            ? "every rank is alive and waits in a collective (they disagree on which: a collective that never completes)"
            : "rank\(silent.count > 1 ? "s" : "") \(silent.map(String.init).joined(separator: ", ")) did not arrive (no heartbeat for \(String(format: "%.0f", now - silent.map { lastHeard[$0] }.max()!)) s: stopped or frozen; last seen at step \(silent.map { peerStep[$0] }.min()!))"
        let kept = newestCheckpoint.map { "; the newest checkpoint stays valid: \($0)" } ?? ""
        let message = "samtrain: error (rank \(rank)): step \(step): a collective did not complete within --collective-timeout \(String(format: "%g", timeout)) s; \(who)\(kept)\n"
        _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        _exit(1)
    }
}
