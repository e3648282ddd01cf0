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

    /// Makes the cluster ask for passwords (SCRAM) on its socket. At first start, while the
    /// cluster still trusts its socket, the superuser gets a fresh password, kept in a 0600 file
    /// of ours; from then on `pg_hba.conf` admits password logins only. The socket's directory
    /// already keeps out everyone but the server, the API and the queue manager; with passwords,
    /// each of those two can log in as its own role only.
    func requirePasswords() async throws {
        let file = self.directory.databasePasswordFile
        if !FileManager.default.fileExists(atPath: file) {
            let password = RoleSetup.freshPassword()
            let admin = PostgresClient(configuration: self.directory.embeddedDatabase.withDatabase("postgres").clientConfiguration(maximumConnections: 1))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await admin.run() }
                defer { group.cancelAll() }
                try await admin.withTransaction(logger: self.logger) { connection in
                    try await connection.query("SELECT set_config('oneo.setup_password', \(password), true)", logger: self.logger)
                    // Constant SQL; the password arrives as the setting bound above.
                    try await connection.query(
                        "DO $$ BEGIN EXECUTE format('ALTER ROLE %I PASSWORD %L', current_user, current_setting('oneo.setup_password')); END $$",
                        logger: self.logger
                    )
                }
            }
            try Self.writePrivately(password + "\n", to: file, owner: nil)
            self.logger.notice("embedded PostgreSQL now requires passwords", metadata: ["password.file": "\(file)"])
        }
        let rules = "# Written by oneo-ai serve at each start: password (SCRAM) logins on the Unix socket, nothing else.\nlocal all all scram-sha-256\n"
        let hba = self.directory.postgresData + "/pg_hba.conf"
        if (try? String(contentsOfFile: hba, encoding: .utf8)) != rules {
            try Self.writePrivately(rules, to: hba, owner: self.account)
            let admin = PostgresClient(configuration: self.directory.embeddedDatabase.withDatabase("postgres").clientConfiguration(maximumConnections: 1))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await admin.run() }
                defer { group.cancelAll() }
                try await admin.query("SELECT pg_reload_conf()", logger: self.logger)
            }
        }
    }

    /// Writes `contents` to `path` through a 0600 file created beside it (never through a link)
    /// and renamed over it: private from its first byte, whole or not at all, and handed to
    /// `owner` through its descriptor before it takes the name (no chown by path in a directory
    /// another account owns).
    static func writePrivately(_ contents: String, to path: String, owner: ProcessAccount?, service: String = "postgres") throws {
        let temporary = path + ".new"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw EmbeddedServiceError(service: service, detail: "cannot create \(temporary): errno \(errno)") }
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let owned = owner.map { fchown(descriptor, $0.uid, $0.gid) == 0 } ?? true
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == bytes.count, owned, synced == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw EmbeddedServiceError(service: service, detail: "cannot write \(path): errno \(errno)")
        }
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
