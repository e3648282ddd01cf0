public import OneoWire
public import Logging
public import PostgresNIO

/// Applies the versioned SQL migrations embedded in the binary, each in its own transaction, under
/// an advisory lock so that a `serve` and an operator's `migrate` never apply one twice.
public struct Migrator: Sendable {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    /// In version order; a new migration is a new file `Schema/Migrations/mNNNN_name.sql` (the name SwiftPM gives its embedded bytes) and a line here.
    public static let migrations: [Migration] = [
        Migration(version: 1, name: "initial", sql: String(decoding: PackageResources.m0001_initial_sql, as: UTF8.self)),
        Migration(version: 2, name: "fields_version", sql: String(decoding: PackageResources.m0002_fields_version_sql, as: UTF8.self)),
        Migration(version: 3, name: "prompt_guard", sql: String(decoding: PackageResources.m0003_prompt_guard_sql, as: UTF8.self)),
        Migration(version: 4, name: "always_on", sql: String(decoding: PackageResources.m0004_always_on_sql, as: UTF8.self)),
        Migration(version: 5, name: "field_versions", sql: String(decoding: PackageResources.m0005_field_versions_sql, as: UTF8.self)),
        Migration(version: 6, name: "row_security", sql: String(decoding: PackageResources.m0006_row_security_sql, as: UTF8.self)),
        Migration(version: 7, name: "job_lifecycle", sql: String(decoding: PackageResources.m0007_job_lifecycle_sql, as: UTF8.self)),
        Migration(version: 8, name: "cached_tokens", sql: String(decoding: PackageResources.m0008_cached_tokens_sql, as: UTF8.self)),
        Migration(version: 9, name: "usage_analytics", sql: String(decoding: PackageResources.m0009_usage_analytics_sql, as: UTF8.self)),
        Migration(version: 10, name: "operator_key", sql: String(decoding: PackageResources.m0010_operator_key_sql, as: UTF8.self)),
        Migration(version: 11, name: "budgets", sql: String(decoding: PackageResources.m0011_budgets_sql, as: UTF8.self)),
        Migration(version: 12, name: "result_cache", sql: String(decoding: PackageResources.m0012_result_cache_sql, as: UTF8.self)),
        Migration(version: 13, name: "workflow_nodes", sql: String(decoding: PackageResources.m0013_workflow_nodes_sql, as: UTF8.self)),
        Migration(version: 14, name: "tool_calls", sql: String(decoding: PackageResources.m0014_tool_calls_sql, as: UTF8.self)),
        Migration(version: 15, name: "file_search", sql: String(decoding: PackageResources.m0015_file_search_sql, as: UTF8.self)),
    ]

    /// An arbitrary constant that names our lock among the server's advisory locks.
    private static let advisoryLockKey: Int64 = 0x6F6E_656F_6169

    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Applies what is missing and returns the versions it applied.
    @discardableResult
    public func migrate() async throws -> [Int] {
        var applied: [Int] = []
        for migration in Self.migrations {
            let didApply = try await self.client.withTransaction(logger: self.logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey))", logger: self.logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                    """,
                    logger: self.logger
                )
                let existing = try await connection.query(
                    "SELECT 1 FROM schema_migrations WHERE version = \(migration.version)", logger: self.logger
                )
                for try await _ in existing { return false }
                // The statements are ours, compiled into the binary, never built from input.
                for statement in SQLScript.statements(migration.sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: self.logger
                )
                return true
            }
            if didApply {
                self.logger.info("applied migration", metadata: ["migration.version": "\(migration.version)", "migration.name": "\(migration.name)"])
                applied.append(migration.version)
            }
        }
        return applied
    }
}
