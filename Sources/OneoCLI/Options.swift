import ArgumentParser
import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore

/// Options every command that reaches the database shares.
struct InstanceOptions: ParsableArguments {
    @Option(name: .long, help: "The instance's data directory (embedded PostgreSQL and Redis, master key, sockets).")
    var dataDir: String = ".oneo"

    @Option(name: .long, help: "The master key file that seals provider keys (default: <data-dir>/master.key).")
    var masterKeyFile: String?

    var dataDirectory: DataDirectory { DataDirectory(self.dataDir) }

    var masterKeyPath: String { self.masterKeyFile ?? self.dataDirectory.masterKeyFile }

    /// `DATABASE_URL` when set, else the embedded PostgreSQL of the data directory.
    func databaseSettings() throws -> DatabaseSettings? {
        guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else { return nil }
        return try DatabaseSettings(url: url)
    }

    func redisSettings() throws -> RedisSettings? {
        guard let url = ProcessInfo.processInfo.environment["REDIS_URL"], !url.isEmpty else { return nil }
        return try RedisSettings(url: url)
    }

    /// For operator commands: the database `serve` uses, which must be running when embedded.
    func reachableDatabase() throws -> DatabaseSettings {
        if let configured = try self.databaseSettings() { return configured }
        let directory = self.dataDirectory
        guard FileManager.default.fileExists(atPath: directory.postgresSocketDirectory + "/.s.PGSQL.5432") else {
            throw ValidationError("""
                no database is running for data directory \(directory.root): start `oneo-ai serve --data-dir \(self.dataDir)` \
                first, or set DATABASE_URL
                """)
        }
        return directory.embeddedDatabase
    }
}

enum LogSetup {
    /// Logs go to stderr, one line each, at ONEO_LOG_LEVEL (default info).
    static func bootstrap() {
        // Never `trace`: at trace PostgresNIO logs every row it reads, record values and sealed
        // keys among them (review L3); asking for it gives `debug`.
        let asked = ProcessInfo.processInfo.environment["ONEO_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let level = max(asked, .debug)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
