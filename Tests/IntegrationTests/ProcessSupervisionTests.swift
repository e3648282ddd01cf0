import Foundation
import OneoWire
import OneoStore
import OneoCore
import OneoTesting
import PostgresNIO
import StackControl
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The supervisor with real processes: kills, restarts, crash loops, idle stops, the control
/// socket, and what a child's /proc shows. Serialized: the restart-time assertions measure the
/// supervisor, not eight other stacks starting on the same two cores.
@Suite("process supervision", .serialized, .timeLimit(.minutes(5)))
struct ProcessSupervisionTests {
    /// A pipeline `notes` with a text field and an AI field over it.
    static func makeNotes(_ api: JSONClient) async throws {
        let pipeline = try await api.post("/pipelines/", ["name": "Notes", "slug": "notes"])
        try #require(pipeline.status == 201, "pipeline: \(pipeline.body)")
        let text = try await api.post("/pipelines/notes/fields/", ["name": "Text", "slug": "text", "field_type": "text"])
        try #require(text.status == 201, "field: \(text.body)")
        let ai = try await api.post("/pipelines/notes/fields/", [
            "name": "Summary", "slug": "summary", "field_type": "ai_generated",
            "ai_config": ["prompt": "Summarize: {text}", "model": "gpt-4o-mini"],
        ])
        try #require(ai.status == 201, "ai field: \(ai.body)")
    }

    /// Creates a record and returns (record id, job id).
    static func addNote(_ api: JSONClient, _ text: String) async throws -> (record: Int64, job: String) {
        let created = try await api.post("/pipelines/notes/records/", ["data": ["text": .string(text)]])
        try #require(created.status == 201, "record: \(created.body)")
        let record = try #require(created["id"]?.integerValue)
        let job = try #require(created["triggered_jobs"]?.arrayValue?.first?["job_id"]?.stringValue)
        return (Int64(record), job)
    }

    static func jobStatus(_ api: JSONClient, _ job: String) async throws -> String? {
        try await api.get("/ai-jobs/\(job)/")["status"]?.stringValue
    }

    /// Gone: no such process, or a zombie nobody has reaped yet (it runs no code).
    static func isGone(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        guard let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)] == "Z"
    }

    @Test("kill -9 of a processor mid-job: back within 1 s, and the job completes exactly once")
    func killedProcessorMidJob() async throws {
        try await TestStack.with(simulatorLatencyMilliseconds: 1500) { stack in
            try await Self.makeNotes(stack.api)
            let (record, job) = try await Self.addNote(stack.api, "the first note")
            // In flight: its call reserved (the default field budget applies) and under way.
            try await waitUntil("job \(job) to be mid-call") {
                try await stack.count("SELECT count(*)::bigint FROM ai_jobs WHERE id = \(Int64(job) ?? 0) AND status = 'processing' AND reserved_micros > 0") == 1
            }
            let before = try #require(try await stack.child("processor:acme")?.pid)
            kill(before, SIGKILL)
            let killed = ContinuousClock.now
            // Its attempt is released the moment its socket closes: claimable within 1 s.
            let jobID = try #require(Int64(job))
            try await waitUntil("the killed attempt to be released", timeout: .seconds(1), interval: .milliseconds(10)) {
                try await stack.count("SELECT count(*)::bigint FROM ai_job_attempts WHERE job_id = \(jobID) AND attempt = 1 AND outcome = 'retried'") == 1
            }
            let released = ContinuousClock.now - killed
            try await waitUntil("a new processor to be ready", timeout: .seconds(1), interval: .milliseconds(10)) {
                guard let child = try await stack.child("processor:acme") else { return false }
                return child.state == .running && child.pid != nil && child.pid != before
            }
            let back = ContinuousClock.now - killed
            let restarted = try #require(try await stack.child("processor:acme"))
            #expect(restarted.restarts == 1)
            #expect(restarted.lastError?.contains("signal 9") == true)
            // The tenant sees it too: worker_health's answer (larger than the old 256-byte frame
            // cap) carries the restart and how the last run ended.
            let health = try await stack.api.get("/ai-jobs/worker_health/")
            #expect(health["processor"]?["restarts"]?.integerValue == 1)
            // A category for the tenant; the detail (signal 9) is the operator's, in `status`.
            #expect(health["processor"]?["last_exit"] == "killed")

            try await waitUntil("job \(job) to complete") { try await Self.jobStatus(stack.api, job) == "completed" }
            let detail = try await stack.api.get("/ai-jobs/\(job)/")
            #expect(detail["attempt"]?.integerValue == 2, "the killed attempt and the one that completed")
            #expect(detail["attempts"]?.arrayValue?.first?["error_code"] == "processor_stopped")
            #expect(try await stack.count("SELECT count(*)::bigint FROM ai_usage WHERE job_id = \(jobID) AND metered") == 1)
            // The killed call may have been billed: its attempt is charged its reservation.
            #expect(try await stack.count("SELECT count(*)::bigint FROM ai_usage WHERE job_id = \(jobID) AND attempt = 1 AND NOT metered AND cost_micros > 0") == 1)
            #expect(try await stack.count("SELECT count(*)::bigint FROM ai_jobs WHERE record_id = \(record) AND status = 'completed'") == 1)
            #expect(try await stack.count("SELECT count(*)::bigint FROM ai_jobs WHERE cost_micros > 0 AND record_id = \(record)") == 1)
            // Created (version 1), then one AI write (version 2): the killed attempt wrote nothing.
            #expect(try await stack.count("SELECT version::bigint FROM records WHERE id = \(record)") == 2)
            print("processor back \(back) after kill -9; its job released after \(released)")
        }
    }

    @Test("tenant restart acme leaves globex's jobs alone and acme's resume")
    func restartIsolation() async throws {
        try await TestStack.with(simulatorLatencyMilliseconds: 1500) { stack in
            let globex = try await stack.addTenant("globex", providerKey: "test-provider-key-globex")
            try await Self.makeNotes(stack.api)
            try await Self.makeNotes(globex)
            let acmeJob = try await Self.addNote(stack.api, "acme before the restart").job
            var globexJobs: [String] = []
            for index in 0..<4 { globexJobs.append(try await Self.addNote(globex, "globex note \(index)").job) }
            try await waitUntil("globex's jobs to be in flight") {
                var statuses: [String?] = []
                for job in globexJobs { statuses.append(try await Self.jobStatus(globex, job)) }
                return statuses.allSatisfy { $0 == "processing" }
            }
            let globexBefore = try #require(try await stack.child("processor:globex"))
            let acmeBefore = try #require(try await stack.child("processor:acme")?.pid)

            let output = try await stack.cli(["tenant", "restart", "acme", "--timeout", "10"])
            #expect(output.contains("processor:acme"))
            let acmeAfter = try #require(try await stack.child("processor:acme"))
            #expect(acmeAfter.pid != acmeBefore && acmeAfter.state == .running)
            #expect(acmeAfter.restarts == 0, "an operator's restart is not a crash")

            for job in globexJobs {
                try await waitUntil("globex job \(job) to complete") { try await Self.jobStatus(globex, job) == "completed" }
                let detail = try await globex.get("/ai-jobs/\(job)/")
                #expect(detail["attempt"]?.integerValue == 1, "globex's job \(job) was re-attempted")
                #expect((detail["processing_time_ms"]?.integerValue ?? .max) < 1500 + 1000, "globex's job \(job) was delayed")
            }
            let globexAfter = try #require(try await stack.child("processor:globex"))
            #expect(globexAfter.pid == globexBefore.pid && globexAfter.restarts == 0)

            // acme's in-flight job was drained (the timeout is longer than a call), then new work runs.
            try await waitUntil("acme's drained job to complete") { try await Self.jobStatus(stack.api, acmeJob) == "completed" }
            #expect(try await stack.api.get("/ai-jobs/\(acmeJob)/")["attempt"]?.integerValue == 1)
            let resumed = try await Self.addNote(stack.api, "acme after the restart").job
            try await waitUntil("acme's new job to complete") { try await Self.jobStatus(stack.api, resumed) == "completed" }
        }
    }

    @Test("a restart with a short timeout releases acme's unfinished jobs for retry; they complete once")
    func restartReleasesAfterTimeout() async throws {
        try await TestStack.with(simulatorLatencyMilliseconds: 2000) { stack in
            try await Self.makeNotes(stack.api)
            let job = try await Self.addNote(stack.api, "a slow one").job
            try await waitUntil("job \(job) to be in flight") { try await Self.jobStatus(stack.api, job) == "processing" }
            try await stack.cli(["tenant", "restart", "acme", "--timeout", "0"])
            try await waitUntil("job \(job) to complete") { try await Self.jobStatus(stack.api, job) == "completed" }
            #expect(try await stack.api.get("/ai-jobs/\(job)/")["attempt"]?.integerValue == 2)
            let jobID = try #require(Int64(job))
            #expect(try await stack.count("SELECT count(*)::bigint FROM ai_usage WHERE job_id = \(jobID) AND metered") == 1)
        }
    }

    @Test("kill -9 of the supervisor: every child is gone within 2 s")
    func supervisorKilled() async throws {
        let stack = try await TestStack.start()
        do {
            try await Self.makeNotes(stack.api)
            let job = try await Self.addNote(stack.api, "wake a processor").job
            try await waitUntil("job \(job) to complete") { try await Self.jobStatus(stack.api, job) == "completed" }
            let children = try await stack.status().compactMap(\.pid)
            #expect(children.count == 6, "the API, the queue manager, acme's processor and one executor of each tool the test stack starts (code interpreter, images, file search)")
            stack.serve.signal(SIGKILL)
            try await waitUntil("every child of the killed supervisor to be gone", timeout: .seconds(2), interval: .milliseconds(20)) {
                children.allSatisfy(Self.isGone)
            }
        } catch {
            try await stack.stop()
            throw StackFailure(underlying: error, serveLog: String(stack.serve.output.suffix(4000)))
        }
        try await stack.stop()
    }

    @Test("a processor that exits at once every time ends up crash-looping; the supervisor and other tenants carry on")
    func crashLoop() async throws {
        try await TestStack.with { stack in
            let broken = try await stack.addTenant("broken", providerKey: "test-provider-key-broken")
            try await Self.makeNotes(broken)
            try await Self.makeNotes(stack.api)
            // What the CLI refuses to store, a direct write can: the processor exits 78 at start.
            try await stack.withDatabase { client, logger in
                _ = try await client.query("UPDATE tenants SET provider_base_url = 'ftp://nowhere' WHERE slug = 'broken'", logger: logger)
            }
            let stuck = try await Self.addNote(broken, "never processed").job
            try await waitUntil("the broken processor to be crash-looping", timeout: .seconds(30), interval: .milliseconds(100)) {
                try await stack.child("processor:broken")?.state == .crashLooping
            }
            let looping = try #require(try await stack.child("processor:broken"))
            #expect(looping.restarts == 6)
            #expect(looping.lastError == "exit code 78")
            #expect(looping.pid == nil)
            #expect(try await Self.jobStatus(broken, stuck) == "pending")

            let healthy = try await Self.addNote(stack.api, "acme is fine").job
            try await waitUntil("acme's job to complete") { try await Self.jobStatus(stack.api, healthy) == "completed" }
            #expect(try await stack.child("api")?.state == .running)

            // Fixed by the operator, started at once out of the crash loop; the queued job runs.
            try await stack.cli(["tenant", "set-base-url", "broken", stack.local.simulatorBase + "/v1"])
            try await stack.cli(["tenant", "start", "broken"])
            try await waitUntil("the queued job to complete") { try await Self.jobStatus(broken, stuck) == "completed" }
        }
    }

    @Test("idle processors stop and come back when work arrives")
    func idleStop() async throws {
        try await TestStack.with(serveOptions: ["--idle-timeout", "1"]) { stack in
            #expect(try await stack.child("processor:acme") == nil, "no processor before there is work")
            try await Self.makeNotes(stack.api)
            let first = try await Self.addNote(stack.api, "first").job
            try await waitUntil("the first job to complete") { try await Self.jobStatus(stack.api, first) == "completed" }
            let pid = try #require(try await stack.child("processor:acme")?.pid)
            try await waitUntil("the idle processor to stop") {
                let child = try await stack.child("processor:acme")
                return child?.state == .stopped && child?.detail == "idle"
            }
            #expect(Self.isGone(pid))
            let second = try await Self.addNote(stack.api, "second").job
            try await waitUntil("the second job to complete") { try await Self.jobStatus(stack.api, second) == "completed" }
            let back = try #require(try await stack.child("processor:acme"))
            #expect(back.restarts == 0, "stopping when idle is not a crash")
        }
    }

    @Test("an always-on tenant's processor starts without work and outlives the idle timeout")
    func alwaysOn() async throws {
        try await TestStack.with(serveOptions: ["--idle-timeout", "1"]) { stack in
            #expect(try await stack.child("processor:acme") == nil)
            try await stack.cli(["tenant", "set-always-on", "acme", "on"])
            try await waitUntil("the always-on processor to start") { try await stack.child("processor:acme")?.state == .running }
            let pid = try #require(try await stack.child("processor:acme")?.pid)
            // Three idle timeouts later it is the same process, still running.
            try await waitUntil("the processor to have run three idle timeouts", timeout: .seconds(20), interval: .milliseconds(100)) {
                (try await stack.child("processor:acme")?.uptimeSeconds ?? 0) >= 3
            }
            let child = try #require(try await stack.child("processor:acme"))
            #expect(child.pid == pid && child.state == .running && child.detail == "always on")
            try await stack.cli(["tenant", "set-always-on", "acme", "off"])
            try await waitUntil("the processor to stop when idle once always-on is off") {
                try await stack.child("processor:acme")?.state == .stopped
            }
        }
    }

    @Test("a processor stopped mid-call is replaced; its job is back in the queue within 30 s and completes once")
    func stoppedProcessorMidCall() async throws {
        try await TestStack.with(serveOptions: ["--heartbeat-timeout", "3"], simulatorLatencyMilliseconds: 1500) { stack in
            try await Self.makeNotes(stack.api)
            let (record, job) = try await Self.addNote(stack.api, "a note to hang on")
            try await waitUntil("job \(job) to be in flight") { try await Self.jobStatus(stack.api, job) == "processing" }
            let pid = try #require(try await stack.child("processor:acme")?.pid)
            kill(pid, SIGSTOP)
            let stopped = ContinuousClock.now
            let jobID = try #require(Int64(job))
            try await waitUntil("the hung processor's attempt to be back in the queue", timeout: .seconds(30), interval: .milliseconds(50)) {
                try await stack.count("SELECT count(*)::bigint FROM ai_job_attempts WHERE job_id = \(jobID) AND attempt = 1") == 1
            }
            let rescued = ContinuousClock.now - stopped
            try await waitUntil("job \(job) to complete") { try await Self.jobStatus(stack.api, job) == "completed" }
            #expect(Self.isGone(pid), "the stopped processor was killed, so its late result can never arrive")
            #expect(try await stack.count("SELECT count(*)::bigint FROM ai_usage WHERE job_id = \(jobID) AND metered") == 1)
            #expect(try await stack.count("SELECT version::bigint FROM records WHERE id = \(record)") == 2)
            print("hung processor's job back in the queue \(rescued) after SIGSTOP")
        }
    }

    @Test("a silent child is terminated and restarted")
    func silentChild() async throws {
        try await TestStack.with(serveOptions: ["--heartbeat-timeout", "1"]) { stack in
            try await Self.makeNotes(stack.api)
            let job = try await Self.addNote(stack.api, "start a processor").job
            try await waitUntil("the job to complete") { try await Self.jobStatus(stack.api, job) == "completed" }
            let pid = try #require(try await stack.child("processor:acme")?.pid)
            kill(pid, SIGSTOP)
            try await waitUntil("the stopped processor to be replaced", timeout: .seconds(20), interval: .milliseconds(100)) {
                let child = try await stack.child("processor:acme")
                return child?.pid != nil && child?.pid != pid && child?.state == .running
            }
            #expect(Self.isGone(pid))
            #expect(try await stack.child("processor:acme")?.restarts == 1)
        }
    }

    /// Whether a process that does not run as root is dumpable (a non-dumpable one's /proc files
    /// belong to root); nil for a process running as root, where ownership cannot tell.
    static func dumpable(_ pid: Int32) throws -> Bool? {
        guard let uid = Self.ownUID(pid), uid != 0 else { return nil }
        let attributes = try FileManager.default.attributesOfItem(atPath: "/proc/\(pid)/environ")
        return (attributes[.ownerAccountID] as? NSNumber)?.uint32Value != 0
    }

    /// How many of `pid`'s sockets are connected to PostgreSQL's Unix socket. `ss -x` lists the
    /// server's end of each connection with the socket path as its local address and the
    /// client's socket inode as its peer; the client's inodes are its /proc/<pid>/fd links.
    static func databaseConnections(of pid: Int32, socketDirectory: String, logFile: String) async throws -> Int {
        let ours = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap { fd -> Substring? in
            guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"), link.hasPrefix("socket:[") else { return nil }
            return Substring(link.dropFirst(8).dropLast())
        })
        let output = try await ManagedProcess.run("/usr/bin/ss", ["-xn"], logFile: logFile)
        var count = 0
        for line in output.split(separator: "\n") {
            // Netid State Recv-Q Send-Q Local-Address Local-Port Peer-Address Peer-Port
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            guard columns.count >= 8, columns[4].hasPrefix(socketDirectory + "/.s.PGSQL") else { continue }
            if ours.contains(columns[7]) { count += 1 }
        }
        return count
    }

    static func ownUID(_ pid: Int32) -> UInt32? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") })
        else { return nil }
        return line.split(separator: "\t").dropFirst().first.flatMap { UInt32($0) }
    }

    @Test("no provider key in any child's argv or environment, nor in the logs; the API and processors never run as root")
    func keysStayInMemory() async throws {
        let key = "sk-test-NEVER-LEAK-4242424242"
        try await TestStack.with(providerKey: key) { stack in
            try await Self.makeNotes(stack.api)
            let job = try await Self.addNote(stack.api, "wake a processor").job
            try await waitUntil("the job to complete") { try await Self.jobStatus(stack.api, job) == "completed" }
            let pids = try await stack.status().compactMap(\.pid) + [stack.serve.pid]
            #expect(pids.count == 7, "serve, the API, the queue manager, acme's processor, one executor each of the code interpreter, images and file search")
            for pid in pids {
                for file in ["cmdline", "environ"] {
                    let contents = try #require(FileManager.default.contents(atPath: "/proc/\(pid)/\(file)"), "/proc/\(pid)/\(file)")
                    #expect(!String(decoding: contents, as: UTF8.self).contains(key), "the key is in /proc/\(pid)/\(file)")
                }
            }
            var uids: [String: String] = [:]
            for name in ["processor:acme", "api", "qmgr", "tool:code_interpreter:1"] {
                let pid = try #require(try await stack.child(name)?.pid)
                let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
                uids[name] = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(separator: "\t").dropFirst().first.map(String.init)
            }
            if geteuid() == 0 {
                #expect(uids.values.allSatisfy { $0 != "0" }, "the API, the processor and the executor run unprivileged: \(uids)")
                #expect(Set(uids.values).count == 4, "the API, the queue manager, the tenant and the executor each have a uid of their own: \(uids)")
            } else {
                #expect(uids.values.allSatisfy { $0 == String(geteuid()) })
            }
            // Hardening: every child in a session of its own, unable to gain privileges by exec,
            // holding no descriptor of the supervisor's (its epoll instances above all); the
            // supervisor and the API not dumpable.
            for name in ["processor:acme", "api", "qmgr", "tool:code_interpreter:1"] {
                let pid = try #require(try await stack.child(name)?.pid)
                let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
                #expect(status.contains("NoNewPrivs:\t1"), "\(name) can gain privileges by exec")
                let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
                let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
                #expect(fields[3] == "\(pid)", "\(name) leads its own session (session \(fields[3]))")
            }
            // The supervisor runs as root in CI, where ownership cannot tell; as another user it can.
            if let supervisor = try Self.dumpable(stack.serve.pid) { #expect(!supervisor, "the supervisor is not dumpable") }
            #expect(try Self.dumpable(try #require(try await stack.child("api")?.pid)) == false, "the API is not dumpable")
            #expect(try Self.dumpable(try #require(try await stack.child("qmgr")?.pid)) == false, "the queue manager is not dumpable")

            // The processor holds no database credentials: none in its argv or environment, and
            // (while the API and the queue manager do) no connection of its own to PostgreSQL.
            let processor = try #require(try await stack.child("processor:acme")?.pid)
            let database = try DatabaseSettings(url: try TestServices.databaseURL())
            let socketDirectory: String
            if case .unixSocket(let path) = database.endpoint { socketDirectory = String(path.prefix(upTo: path.lastIndex(of: "/")!)) } else { socketDirectory = "" }
            for file in ["cmdline", "environ"] {
                let contents = String(decoding: try #require(FileManager.default.contents(atPath: "/proc/\(processor)/\(file)")), as: UTF8.self)
                #expect(!contents.contains("DATABASE_URL") && !contents.contains(socketDirectory) && !contents.contains(stack.databaseName), "database settings in the processor's \(file)")
            }
            let connected = try await Self.databaseConnections(of: processor, socketDirectory: socketDirectory, logFile: stack.directory + "/ss.log")
            #expect(connected == 0, "the processor has \(connected) connection(s) to PostgreSQL")
            let queueConnections = try await Self.databaseConnections(of: try #require(try await stack.child("qmgr")?.pid), socketDirectory: socketDirectory, logFile: stack.directory + "/ss.log")
            #expect(queueConnections > 0, "the queue manager's connections are visible to this check")

            // The simulator saw the key (it is the provider); nothing we wrote did.
            #expect(try await stack.providerRequests().contains { $0.authorization == "Bearer \(key)" })
            #expect(!stack.serve.output.contains(key))
            #expect(try await stack.count("SELECT count(*)::bigint FROM ai_jobs WHERE ai_jobs::text LIKE '%' || \(key) || '%'") == 0)
        }
    }

    @Test("set-key restarts that tenant's processor alone, and the next call carries the new key")
    func setKeyRestartsOneProcessor() async throws {
        try await TestStack.with { stack in
            let globex = try await stack.addTenant("globex", providerKey: "test-provider-key-globex")
            try await Self.makeNotes(stack.api)
            try await Self.makeNotes(globex)
            for api in [stack.api, globex] {
                let job = try await Self.addNote(api, "start a processor").job
                try await waitUntil("job \(job) to complete") { try await Self.jobStatus(api, job) == "completed" }
            }
            let acmeBefore = try #require(try await stack.child("processor:acme")?.pid)
            let globexBefore = try #require(try await stack.child("processor:globex")?.pid)
            let keyFile = stack.directory + "/rotated.key"
            try #require(FileManager.default.createFile(atPath: keyFile, contents: Data("test-provider-key-rotated\n".utf8), attributes: [.posixPermissions: 0o600]))
            let output = try await stack.cli(["tenant", "set-key", "acme", "--api-key-file", keyFile])
            #expect(output.contains("restarted processor:acme"))
            #expect(try await stack.child("processor:acme")?.pid != acmeBefore)
            #expect(try await stack.child("processor:globex")?.pid == globexBefore)
            let job = try await Self.addNote(stack.api, "after the rotation").job
            try await waitUntil("job \(job) to complete") { try await Self.jobStatus(stack.api, job) == "completed" }
            #expect(try await stack.providerRequests().last?.authorization == "Bearer test-provider-key-rotated")
            #expect(!stack.serve.output.contains("test-provider-key-rotated"))
        }
    }

    @Test("SIGTERM drains the job in flight and exits 0; the children's output is in serve's log, tagged")
    func gracefulShutdown() async throws {
        let stack = try await TestStack.start(simulatorLatencyMilliseconds: 1500)
        var status: Int32?
        do {
            try await Self.makeNotes(stack.api)
            let job = try await Self.addNote(stack.api, "finish me").job
            // In flight in the processor: its call reserved and under way (a job only claimed
            // may still be on its way there, and a draining processor declines it).
            try await waitUntil("job \(job) to be mid-call") {
                try await stack.count("SELECT count(*)::bigint FROM ai_jobs WHERE id = \(Int64(job) ?? 0) AND status = 'processing' AND reserved_micros > 0") == 1
            }
            stack.serve.signal(SIGTERM)
            status = try await stack.serve.waitForExit(timeout: .seconds(30))
            let jobID = try #require(Int64(job))
            #expect(try await stack.count("SELECT count(*)::bigint FROM ai_jobs WHERE id = \(jobID) AND status = 'completed' AND attempt = 1") == 1)
            #expect(stack.serve.output.contains("processor:acme | "))
            #expect(stack.serve.output.contains("api | "))
        } catch {
            try await stack.stop()
            throw StackFailure(underlying: error, serveLog: String(stack.serve.output.suffix(4000)))
        }
        try await stack.stop()
        #expect(status == 0)
    }

    @Test("a second signal stops at once: serve and its children are gone without waiting for the job")
    func secondSignal() async throws {
        let stack = try await TestStack.start(simulatorLatencyMilliseconds: 20_000)
        do {
            try await Self.makeNotes(stack.api)
            let job = try await Self.addNote(stack.api, "too slow to wait for").job
            try await waitUntil("job \(job) to be in flight") { try await Self.jobStatus(stack.api, job) == "processing" }
            let children = try await stack.status().compactMap(\.pid)
            stack.serve.signal(SIGTERM)
            try await waitUntil("the processor to be draining") { try await stack.child("processor:acme")?.state == .draining }
            stack.serve.signal(SIGINT)
            let status = try await stack.serve.waitForExit(timeout: .seconds(5))
            #expect(status != 0)
            try await waitUntil("every child to be gone", timeout: .seconds(2), interval: .milliseconds(20)) { children.allSatisfy(Self.isGone) }
            stack.local.simulator.signal(SIGKILL)  // it would finish the 20-s call before stopping
        } catch {
            try await stack.stop()
            throw StackFailure(underlying: error, serveLog: String(stack.serve.output.suffix(4000)))
        }
        try await stack.stop()
    }

    @Test("malformed, oversized and unauthorised control input gets an error reply; the supervisor lives")
    func controlSocketInput() async throws {
        try await TestStack.with { stack in
            let path = DataDirectory(stack.directory + "/data").controlSocket
            var info = stat()
            #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)

            #expect(try Self.rawControl(path, [0, 0, 0, 5] + Array("hello".utf8))?.contains("bad_request") == true)
            #expect(try Self.rawControl(path, [0x7F, 0xFF, 0xFF, 0xFF])?.contains("bad_request") == true)
            #expect(try Self.rawControl(path, [0, 0, 0, 2] + Array("{}".utf8))?.contains("bad_request") == true)
            let unknown = try await ControlClient.send(ControlRequest(command: .restart, tenant: "nobody-here"), path: path, timeout: .seconds(10))
            #expect(unknown.error?.code == "unknown_tenant")

            if geteuid() == 0 {
                // Open the way for another uid, so that the peer check itself is what refuses it.
                chmod(stack.directory + "/data/run", 0o711)
                chmod(path, 0o666)
                let client = """
                    import socket, struct, sys
                    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
                    body = b'{"command": "status"}'
                    try: s.sendall(struct.pack('>I', len(body)) + body)
                    except BrokenPipeError: pass  # refused before our request was read: the reply is waiting
                    print(s.recv(4096)[4:].decode())
                    """
                let output = try await ManagedProcess.run(
                    "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "/usr/bin/env", "python3", "-c", client, path],
                    logFile: stack.directory + "/status-as-nobody.log"
                )
                #expect(output.contains("forbidden"), "another uid got: \(output)")
                #expect(!output.contains("children"))
            }
            #expect(try await stack.child("api")?.state == .running, "the supervisor still answers")
        }
    }

    /// Writes raw bytes to the control socket and returns the reply body, if any.
    static func rawControl(_ path: String, _ bytes: [UInt8]) throws -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = try #require(ControlClient.address(path))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(connected == 0)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var reply = [UInt8](repeating: 0, count: 4096)
        var total = 0
        while total < reply.count {
            let count = reply[total...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            total += count
        }
        return total > 4 ? String(decoding: reply[4..<total], as: UTF8.self) : nil
    }
}
