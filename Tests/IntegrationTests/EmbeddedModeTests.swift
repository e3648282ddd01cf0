import Foundation
import OneoCore
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
        var instances: [(ManagedProcess, JSONClient, String)] = []
        for name in ["one", "two"] {
            let directory = root + "/" + name
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let port = try freeLoopbackPort()
            // ManagedProcess clears DATABASE_URL and REDIS_URL: this is embedded mode.
            let serve = try ManagedProcess(TestServices.executable("oneo-ai"), ["serve", "--data-dir", directory + "/data", "--port", String(port)], logFile: directory + "/serve.log")
            instances.append((serve, JSONClient(baseURL: "http://127.0.0.1:\(port)"), directory + "/data"))
        }
        do {
            for (serve, client, _) in instances {
                try await waitUntil("an embedded instance to answer /healthz", timeout: .seconds(90)) {
                    guard serve.isRunning else { throw CommandFailed(command: "oneo-ai serve", status: -1, output: serve.output) }
                    return (try? await client.get("/healthz"))?.status == 200
                }
            }
            for (_, _, data) in instances {
                let directory = DataDirectory(data)
                #expect(FileManager.default.fileExists(atPath: directory.postgresData + "/PG_VERSION"))
                #expect(FileManager.default.fileExists(atPath: directory.redisSocket))
                let attributes = try FileManager.default.attributesOfItem(atPath: directory.masterKeyFile)
                #expect((attributes[.posixPermissions] as? Int) == 0o600, "the master key is private")
            }
            // A tenant added through one data directory lands in that instance only.
            let output = try await ManagedProcess.run(
                TestServices.executable("oneo-ai"), ["tenant", "add", "acme", "--name", "Acme", "--data-dir", instances[0].2],
                logFile: root + "/tenant.log"
            )
            #expect(output.contains("tenant acme added"))
            let error = await #expect(throws: CommandFailed.self) {
                try await ManagedProcess.run(
                    TestServices.executable("oneo-ai"), ["token", "create", "--tenant", "acme", "--data-dir", instances[1].2],
                    logFile: root + "/token.log"
                )
            }
            #expect(error?.output.contains("no tenant with slug 'acme'") == true, "the second instance has its own database")
        } catch {
            for (serve, _, _) in instances { Issue.record("serve log:\n\(serve.output.suffix(3000))") }
            for (serve, _, _) in instances { _ = await serve.stop() }
            throw error
        }
        for (serve, _, data) in instances {
            let status = await serve.stop()
            #expect(status == 0, "serve exits 0 on SIGTERM:\n\(serve.output.suffix(2000))")
            #expect(!FileManager.default.fileExists(atPath: DataDirectory(data).postgresData + "/postmaster.pid"), "PostgreSQL stopped with serve")
        }
    }
}
