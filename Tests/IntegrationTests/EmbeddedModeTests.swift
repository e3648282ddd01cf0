import Foundation
import OneoWire
import OneoStore
import OneoCore
import OneoRedis
import OneoTesting
import StackControl
import Testing

/// `oneo-ai serve` with no DATABASE_URL / REDIS_URL runs its own PostgreSQL and Redis.
@Suite("embedded mode", .timeLimit(.minutes(3)))
struct EmbeddedModeTests {
    @Test("two instances with their own data directories and ports run side by side and stop cleanly")
    func twoInstancesSideBySide() async throws {
        let root = try TestServices.temporaryDirectory("oneo-embedded")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var instances: [(ManagedProcess, String)] = []
        for name in ["one", "two"] {
            let directory = root + "/" + name
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // ManagedProcess clears DATABASE_URL and REDIS_URL: this is embedded mode. Port 0:
            // each instance's API gets a port from the kernel and writes it under its data dir.
            let serve = try ManagedProcess(TestServices.executable("oneo-ai"), ["serve", "--data-dir", directory + "/data", "--port", "0"], logFile: directory + "/serve.log")
            instances.append((serve, directory + "/data"))
        }
        do {
            var ports: [Int] = []
            for (serve, data) in instances {
                ports.append(try await Self.waitForAPI(serve, data: data))
            }
            #expect(Set(ports).count == 2, "each instance has its own port: \(ports)")
            for (_, data) in instances {
                let directory = DataDirectory(data)
                #expect(FileManager.default.fileExists(atPath: directory.postgresData + "/PG_VERSION"))
                #expect(FileManager.default.fileExists(atPath: directory.redisSocket))
                // Its default user is off: a connection that does not log in is refused, one that
                // logs in as a tenant's cache user with a wrong password too.
                #expect(throws: RedisError.self) { try RedisConnection(directory.embeddedRedis, timeoutMilliseconds: 1_000).ping() }
                #expect(throws: RedisError.self) {
                    try RedisConnection(directory.embeddedRedis.login(as: "oneo-admin", password: "guess"), timeoutMilliseconds: 1_000).ping()
                }
                let attributes = try FileManager.default.attributesOfItem(atPath: directory.masterKeyFile)
                #expect((attributes[.posixPermissions] as? Int) == 0o600, "the master key is private")
            }
            // A tenant added through one data directory lands in that instance only.
            let output = try await ManagedProcess.run(
                TestServices.executable("oneo-ai"), ["tenant", "add", "acme", "--name", "Acme", "--data-dir", instances[0].1],
                logFile: root + "/tenant.log"
            )
            #expect(output.contains("tenant acme added"))
            let error = await #expect(throws: CommandFailed.self) {
                try await ManagedProcess.run(
                    TestServices.executable("oneo-ai"), ["token", "create", "--tenant", "acme", "--data-dir", instances[1].1],
                    logFile: root + "/token.log"
                )
            }
            #expect(error?.output.contains("no tenant with slug 'acme'") == true, "the second instance has its own database")
        } catch {
            for (serve, _) in instances { Issue.record("serve log:\n\(serve.output.suffix(3000))") }
            for (serve, _) in instances { _ = await serve.stop() }
            throw error
        }
        for (serve, data) in instances {
            let status = await serve.stop()
            #expect(status == 0, "serve exits 0 on SIGTERM:\n\(serve.output.suffix(2000))")
            #expect(!FileManager.default.fileExists(atPath: DataDirectory(data).postgresData + "/postmaster.pid"), "PostgreSQL stopped with serve")
        }
    }

    @Test("a processor's identity cannot reach the embedded PostgreSQL; the queue manager's can")
    func processorsCannotReachTheDatabase() async throws {
        guard geteuid() == 0 else {
            Issue.record("skipped: needs root, to run processors as uids of their own and to connect as them; run the suite as root (CI does)")
            return
        }
        let root = try TestServices.temporaryDirectory("oneo-embedded-isolation")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = root + "/data"
        let serve = try ManagedProcess(TestServices.executable("oneo-ai"), ["serve", "--data-dir", data, "--port", "0"], logFile: root + "/serve.log")
        do {
            _ = try await Self.waitForAPI(serve, data: data)
            let cli = TestServices.executable("oneo-ai")
            _ = try await ManagedProcess.run(cli, ["tenant", "add", "acme", "--name", "Acme", "--data-dir", data], logFile: root + "/cli.log")
            _ = try await ManagedProcess.run(cli, ["tenant", "set-always-on", "acme", "on", "--data-dir", data], logFile: root + "/cli.log")
            var pids: [String: Int32] = [:]
            try await waitUntil("acme's processor and the queue manager to run", timeout: .seconds(30)) {
                let output = try await ManagedProcess.run(cli, ["status", "--json", "--data-dir", data], logFile: root + "/cli.log")
                let children = try JSONDecoder().decode(ControlReply.self, from: Data(output.utf8)).children ?? []
                for child in children where child.state == .running { pids[child.name] = child.pid }
                return pids["processor:acme"] != nil && pids["qmgr"] != nil
            }
            let directory = DataDirectory(data)
            let password = try String(contentsOfFile: directory.databasePasswordFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let mode = try FileManager.default.attributesOfItem(atPath: directory.databasePasswordFile)[.posixPermissions] as? Int
            #expect(mode == 0o600, "the database password file is private")
            // Each attempt logs in as the superuser: with its password, and without.
            func connects(as name: String, password: String?) async throws -> Bool {
                let identity = try Self.identity(of: try #require(pids[name]))
                let attempt = try? await ManagedProcess.run(
                    "/usr/bin/setpriv",
                    identity + ["--", "/usr/bin/psql", "-w", "-h", directory.postgresSocketDirectory, "-U", DataDirectory.embeddedDatabaseUser,
                                "-d", DataDirectory.embeddedDatabaseName, "-Atc", "SELECT 'reached'"],
                    environment: password.map { ["PGPASSWORD": $0] } ?? [:], logFile: root + "/psql-\(name).log"
                )
                return attempt?.contains("reached") == true
            }
            #expect(try await connects(as: "processor:acme", password: password) == false, "a processor's uid and groups reach PostgreSQL, even knowing a password")
            #expect(try await connects(as: "qmgr", password: password) == true, "the queue manager's identity reaches the socket: the check itself works")
            #expect(try await connects(as: "qmgr", password: nil) == false, "the embedded PostgreSQL admits no login without a password")
        } catch {
            Issue.record("serve log:\n\(serve.output.suffix(3000))")
            _ = await serve.stop()
            throw error
        }
        #expect(await serve.stop() == 0)
    }

    /// Waits for serve's API to report its port and answer /healthz there; returns the port.
    static func waitForAPI(_ serve: ManagedProcess, data: String) async throws -> Int {
        var port = 0
        try await waitUntil("an embedded instance to report its port and answer /healthz", timeout: .seconds(90)) {
            guard serve.isRunning else { throw CommandFailed(command: "oneo-ai serve", status: -1, output: serve.output) }
            guard let reported = LocalStack.port(in: DataDirectory(data).apiPortFile) else { return false }
            port = reported
            return (try? await JSONClient(baseURL: "http://127.0.0.1:\(reported)").get("/healthz"))?.status == 200
        }
        return port
    }

    /// setpriv arguments that take on `pid`'s uid, gid and supplementary groups.
    static func identity(of pid: Int32) throws -> [String] {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8).split(separator: "\n")
        func field(_ name: String) -> [String] {
            status.first { $0.hasPrefix(name + ":") }.map { $0.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().map(String.init) } ?? []
        }
        let uid = try #require(field("Uid").first)
        let gid = try #require(field("Gid").first)
        let groups = field("Groups")
        return ["--reuid=\(uid)", "--regid=\(gid)"] + (groups.isEmpty ? ["--clear-groups"] : ["--groups=" + groups.joined(separator: ",")])
    }
}
