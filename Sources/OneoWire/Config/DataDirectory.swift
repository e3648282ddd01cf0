import Foundation

/// The layout of an instance's data directory (`.oneo/` by default). Everything one `serve`
/// instance owns lives under it, so two instances with different directories never collide.
public struct DataDirectory: Sendable, Hashable {
    public let root: String

    public init(_ path: String) {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        self.root = URL(fileURLWithPath: absolute).standardizedFileURL.path
    }

    /// PGDATA of the embedded PostgreSQL.
    public var postgresData: String { "\(self.root)/postgres/data" }
    /// The embedded PostgreSQL listens only on a Unix socket here: no TCP port to collide on.
    public var postgresSocketDirectory: String { "\(self.root)/postgres/run" }
    public var redisDirectory: String { "\(self.root)/redis" }
    public var redisSocket: String { "\(self.root)/redis/redis.sock" }
    /// Supervisor-owned sockets (the control socket lives here).
    public var runDirectory: String { "\(self.root)/run" }
    /// Where `serve` answers operator commands (mode 0600).
    public var controlSocket: String { "\(self.root)/run/oneo-ai.sock" }
    public var masterKeyFile: String { "\(self.root)/master.key" }
    /// The port the API listens on, written by serve once it does (with `--port 0`, the
    /// kernel's pick): how a script or a test finds it.
    public var apiPortFile: String { "\(self.root)/run/api.port" }
    /// The embedded PostgreSQL's superuser password (0600, ours): written at first start, when
    /// the cluster switches from trust to SCRAM authentication.
    public var databasePasswordFile: String { "\(self.root)/postgres.password" }

    public static let embeddedDatabaseName = "oneo"
    public static let embeddedDatabaseUser = "oneo"

    /// How every process reaches the embedded PostgreSQL of this directory.
    public var embeddedDatabase: DatabaseSettings {
        DatabaseSettings(
            endpoint: .unixSocket(path: "\(self.postgresSocketDirectory)/.s.PGSQL.5432"),
            username: Self.embeddedDatabaseUser,
            password: (try? String(contentsOfFile: self.databasePasswordFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines),
            database: Self.embeddedDatabaseName
        )
    }

    public var embeddedRedis: RedisSettings { RedisSettings(endpoint: .unixSocket(path: self.redisSocket)) }
}
