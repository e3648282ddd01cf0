public import Logging
public import PostgresNIO

/// What identifies this deployment among others sharing a service (migration 0012).
public enum InstanceSettings {
    /// The instance's namespace in Redis: twelve hex digits made at the first migration.
    public static func cacheNamespace(_ database: PostgresClient, logger: Logger) async throws -> String {
        let rows = try await database.query("SELECT cache_namespace FROM instance_settings WHERE id = 1", logger: logger)
        for try await namespace in rows.decode(String.self) { return namespace }
        throw InstanceSettingsMissing()
    }

    public struct InstanceSettingsMissing: Error, CustomStringConvertible {
        public var description: String { "instance_settings has no row: run `oneo-ai migrate`" }
    }
}
