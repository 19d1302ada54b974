import Foundation
import XCTest

/// A one-machine Slurm cluster started by the tests: a generated slurm.conf for this host
/// (2 CPUs, one partition), its own munged, slurmctld and slurmd, every file (key, sockets,
/// state, spool, logs) in a temporary directory, ports of its own; `stop` ends the daemons.
final class LocalSlurm {
    let root: URL
    let configuration: String
    private var pidFiles: [String] = []

    /// `SLURM_CONF` for the client commands (sbatch, scontrol, …) and the jobs they submit.
    var environment: [String: String] { ["SLURM_CONF": configuration] }

    /// Starts the daemons and waits for the node to be idle; XCTSkip (with the reason and the
    /// daemons' last log lines) when they cannot start here.
    static func start() throws -> LocalSlurm {
        for tool in ["munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "sinfo"] where which(tool) == nil {
            throw XCTSkip("Slurm is not installed (\(tool) is not on PATH); launch/setup --slurm installs slurm-wlm and munge")
        }
        guard geteuid() == 0 else {
            throw XCTSkip("slurmd must run as root to start jobs as their user; the tests run as uid \(geteuid())")
        }
        let cluster = try LocalSlurm()
        do {
            try cluster.launchDaemons()
        } catch {
            cluster.stop()
            throw error
        }
        return cluster
    }

    private init() throws {
        // Short path: munge's socket path must fit in sun_path.
        root = URL(fileURLWithPath: "/tmp/samtrain-slurm-\(UUID().uuidString.prefix(8))")
        for sub in ["state", "spool", "log"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        configuration = root.appendingPathComponent("slurm.conf").path
        let host = LocalSlurm.hostName
        // Ports of its own, so that the cluster neither meets a system Slurm nor another test run.
        let port = Int.random(in: 20_000...50_000)
        let r = root.path
        let conf = """
        ClusterName=samtrain-test
        SlurmctldHost=\(host)(127.0.0.1)
        SlurmctldPort=\(port)
        SlurmdPort=\(port + 1)
        SlurmUser=root
        SlurmdUser=root
        AuthType=auth/munge
        CredType=cred/munge
        # cred_expire also sets how long a requeued job waits before it may start again (default 120 s).
        AuthInfo=socket=\(r)/munge.sock,cred_expire=5
        StateSaveLocation=\(r)/state
        SlurmdSpoolDir=\(r)/spool
        SlurmctldPidFile=\(r)/slurmctld.pid
        SlurmdPidFile=\(r)/slurmd.pid
        SlurmctldLogFile=\(r)/log/slurmctld.log
        SlurmdLogFile=\(r)/log/slurmd.log
        ProctrackType=proctrack/linuxproc
        TaskPlugin=task/none
        MpiDefault=none
        SwitchType=switch/none
        SchedulerType=sched/builtin
        SchedulerParameters=sched_interval=1
        SelectType=select/cons_tres
        SelectTypeParameters=CR_CPU
        ReturnToService=2
        JobRequeue=1
        KillWait=30
        MinJobAge=600
        JobCompType=jobcomp/none
        AccountingStorageType=accounting_storage/none
        JobAcctGatherType=jobacct_gather/none
        NodeName=\(host) NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
        PartitionName=test Nodes=\(host) Default=YES MaxTime=INFINITE State=UP

        """
        try conf.write(toFile: configuration, atomically: true, encoding: .utf8)
    }

    private func launchDaemons() throws {
        let r = root.path
        let key = r + "/munge.key"
        _ = FileManager.default.createFile(atPath: key, contents: Data((0..<1024).map { _ in UInt8.random(in: 0...255) }), attributes: [.posixPermissions: 0o400])
        try daemon("munged", ["--key-file=\(key)", "--socket=\(r)/munge.sock", "--pid-file=\(r)/munged.pid",
                              "--log-file=\(r)/log/munged.log", "--seed-file=\(r)/munge.seed", "--force"], pidFile: r + "/munged.pid")
        try daemon("slurmctld", ["-i"], pidFile: r + "/slurmctld.pid")
        try daemon("slurmd", [], pidFile: r + "/slurmd.pid")
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let r = try? run("sinfo", ["-h", "-o", "%T"]), r.status == 0, r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "idle" { return }
            usleep(200_000)
        }
        throw XCTSkip("the local Slurm's node did not become idle within 30 s: \(logTail())")
    }

    private func daemon(_ name: String, _ arguments: [String], pidFile: String) throws {
        // Output to a file, not a pipe (a daemon that kept the pipe open would hold up a
        // reader); posix_spawn and waitpid, not Foundation's Process, which here did not see
        // munged's launcher exit.
        let output = root.path + "/log/\(name).start"
        let executable = LocalSlurm.which(name)!
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let env = ProcessInfo.processInfo.environment.merging(environment) { _, b in b }.map { "\($0.key)=\($0.value)" }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else { throw XCTSkip("\(name) could not be started: \(String(cString: strerror(spawned)))") }
        // Each forks its daemon and returns.
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(30)
        while waitpid(pid, &status, WNOHANG) == 0 {
            guard Date() < deadline else { kill(pid, SIGKILL); throw XCTSkip("\(name) did not return within 30 s: \(logTail())") }
            usleep(20_000)
        }
        guard status == 0 else {
            let said = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            throw XCTSkip("\(name) could not start (wait status \(status)): \(said) \(logTail())")
        }
        pidFiles.append(pidFile)
        while !FileManager.default.fileExists(atPath: pidFile) && Date() < deadline { usleep(50_000) }
    }

    /// The last lines of the daemons' logs (for messages).
    func logTail() -> String {
        ["munged", "slurmctld", "slurmd"].map { name in
            let text = (try? String(contentsOfFile: root.path + "/log/\(name).log", encoding: .utf8)) ?? ""
            return "\(name).log: " + text.split(separator: "\n").suffix(5).joined(separator: " | ")
        }.joined(separator: "; ")
    }

    /// A Slurm client command against this cluster.
    func run(_ tool: String, _ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 60) throws -> Subprocess.Result {
        try Subprocess.run(LocalSlurm.which(tool) ?? tool, arguments, environment: environment.merging(extra) { _, b in b }, timeout: timeout)
    }

    /// `scontrol show job -o ID`: one dictionary per job (an array: per task).
    func jobs(_ id: String) throws -> [[String: String]] {
        let r = try run("scontrol", ["show", "job", "-o", id])
        return r.stdout.split(separator: "\n").map { line -> [String: String] in
            var fields: [String: String] = [:]
            for field in line.split(separator: " ") {
                let parts = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if parts.count == 2, fields[String(parts[0])] == nil { fields[String(parts[0])] = String(parts[1]) }
            }
            return fields
        }
    }

    static let finalStates: Set<String> = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"]

    /// Waits until every job (or array task) of `id` has ended; their records.
    func wait(for id: String, timeout: Double) throws -> [[String: String]] {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [[String: String]] = []
        while Date() < deadline {
            last = try jobs(id)
            if !last.isEmpty, last.allSatisfy({ LocalSlurm.finalStates.contains($0["JobState"] ?? "") }) { return last }
            usleep(500_000)
        }
        _ = try? run("scancel", [id])
        XCTFail("job \(id) did not end within \(Int(timeout)) s: \(last.map { "\($0["JobId"] ?? "?") \($0["JobState"] ?? "?") \($0["Reason"] ?? "")" }); \(logTail())")
        return last
    }

    /// Ends the daemons this cluster started (SIGTERM, then SIGKILL after 10 s), newest first.
    func stop() {
        for pidFile in pidFiles.reversed() {
            guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while kill(pid, 0) == 0 && Date() < deadline { usleep(100_000) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        pidFiles = []
        try? FileManager.default.removeItem(at: root)
    }

    static var hostName: String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, 255)
        return String(nulTerminated: name).split(separator: ".").first.map(String.init) ?? "localhost"
    }

    static func which(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
