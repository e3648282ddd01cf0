import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore
import PostgresNIO

/// A private PostgreSQL under the data directory, listening only on a Unix socket there (mode
/// 0700), with `synchronous_commit` left on: embedded is for convenience, not for less durability.
struct EmbeddedPostgres {
    let directory: DataDirectory
    let account: ProcessAccount?
    /// The database clients' group (the API and the queue manager; never a processor), which
    /// alone may reach the socket besides the server's account.
    let clientGroup: gid_t?
    let logger: Logger

    /// Debian installs server binaries outside PATH; `ONEO_PG_BINDIR` overrides the search.
    static func binaryDirectory() throws(EmbeddedServiceError) -> String {
        if let configured = ProcessInfo.processInfo.environment["ONEO_PG_BINDIR"] { return configured }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        if let newest = versions.last { return "\(root)/\(newest)/bin" }
        for candidate in ["/usr/local/bin", "/usr/bin"] where FileManager.default.isExecutableFile(atPath: candidate + "/postgres") {
            return candidate
        }
        throw EmbeddedServiceError(service: "postgres", detail: "no PostgreSQL server binaries found: install postgresql or set ONEO_PG_BINDIR")
    }

    var isInitialized: Bool { FileManager.default.fileExists(atPath: self.directory.postgresData + "/PG_VERSION") }

    /// The `initdb` child, or nil when the cluster already exists.
    func initdbSpec() throws -> ChildSpec? {
        guard !self.isInitialized else { return nil }
        let manager = FileManager.default
        try manager.createDirectory(atPath: self.directory.postgresData, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try manager.createDirectory(atPath: self.directory.postgresSocketDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try self.account?.own(self.directory.root + "/postgres")
        let arguments = [
            "-D", self.directory.postgresData, "-U", DataDirectory.embeddedDatabaseUser, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions",
        ]
        return try self.spec(role: .setup, name: "initdb", program: "initdb", arguments: arguments)
    }

    func serverSpec() throws -> ChildSpec {
        try FileManager.default.createDirectory(atPath: self.directory.postgresSocketDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try self.account?.own(self.directory.postgresSocketDirectory)
        var arguments = [
            "-D", self.directory.postgresData,
            "-k", self.directory.postgresSocketDirectory,
            "-c", "listen_addresses=",
            "-c", "unix_socket_permissions=0700",
            "-c", "max_connections=500",
            "-c", "log_min_messages=warning",
        ]
        if let group = self.clientGroup {
            // The API and the queue manager are in this group, processors are not: the socket and
            // the two directories above it open to the group, and to no one else.
            try grantGroupPassage(self.directory.root + "/postgres", group: group)
            try grantGroupPassage(self.directory.postgresSocketDirectory, group: group)
            arguments += ["-c", "unix_socket_group=\(group)", "-c", "unix_socket_permissions=0770"]
        }
        return try self.spec(role: .postgres, name: "postgres", program: "postgres", arguments: arguments)
    }

    /// SIGQUIT on our death is PostgreSQL's immediate shutdown: the postmaster takes its backends
    /// down with it. (A plain kill of the postmaster would leave them running.)
    private func spec(role: ChildSpec.Role, name: String, program: String, arguments: [String]) throws -> ChildSpec {
        ChildSpec.foreign(role: role, name: name, program: try Self.binaryDirectory() + "/" + program, arguments: arguments, account: self.account, deathSignal: "SIGQUIT")
    }

    /// Ready when `postmaster.pid` reports `ready` (what pg_ctl waits for).
    func isReady() -> Bool {
        guard let contents = try? String(contentsOfFile: self.directory.postgresData + "/postmaster.pid", encoding: .utf8) else {
            return false
        }
        return contents.split(separator: "\n").last?.trimmingCharacters(in: .whitespaces) == "ready"
    }

    /// Creates our database in a fresh cluster.
    func createDatabaseIfMissing() async throws {
        let admin = PostgresClient(configuration: self.directory.embeddedDatabase.withDatabase("postgres").clientConfiguration(maximumConnections: 1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await admin.run() }
            defer { group.cancelAll() }
            let name = DataDirectory.embeddedDatabaseName
            let rows = try await admin.query("SELECT 1 FROM pg_database WHERE datname = \(name)", logger: self.logger)
            var exists = false
            for try await _ in rows { exists = true }
            if !exists {
                // CREATE DATABASE takes no bind parameters; the name is our constant, not input.
                try await admin.query("CREATE DATABASE \(unescaped: name)", logger: self.logger)
                self.logger.info("created database", metadata: ["database": "\(name)"])
            }
        }
    }
}
