import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore
import PostgresNIO

/// A tenant as the supervisor needs it to run its processor.
struct TenantRuntime: Sendable, Hashable {
    let id: TenantID
    let slug: String
    let active: Bool
    let alwaysOn: Bool
    let sealedKey: Data?
    /// Set when the tenant uses the operator's fallback key: that key, sealed for tenant 0.
    let usesOperatorKey: Bool
    let operatorSealedKey: Data?
    let operatorBaseURL: String?
    /// What the processor is told in its bootstrap (it reads no database).
    let name: String
    let providerBaseURL: String
}

/// Reads which tenants should have a processor, and the one row a processor is started from.
struct TenantDirectory: Sendable {
    let database: PostgresClient

    /// Active tenants that are always on. (Tenants with work are the queue manager's to name.)
    func alwaysOn(logger: Logger) async throws -> [TenantRuntime] {
        try await self.tenants("WHERE t.status = 'active' AND t.always_on", logger: logger)
    }

    func tenant(_ id: TenantID, logger: Logger) async throws -> TenantRuntime? {
        try await self.tenants("WHERE t.id = \(id)", logger: logger).first
    }

    func tenant(slug: String, logger: Logger) async throws -> TenantRuntime? {
        try await self.tenants("WHERE t.slug = \(slug)", logger: logger).first
    }

    /// Which of these tenants are still active, and whether each is always on.
    func active(among ids: [TenantID], logger: Logger) async throws -> [TenantID: Bool] {
        let rows = try await self.database.query(
            "SELECT id, always_on FROM tenants WHERE status = 'active' AND id = ANY(\(ids.map(\.rawValue)))", logger: logger
        )
        var active: [TenantID: Bool] = [:]
        for try await (id, alwaysOn) in rows.decode((TenantID, Bool).self) { active[id] = alwaysOn }
        return active
    }

    private func tenants(_ filter: PostgresQuery, logger: Logger) async throws -> [TenantRuntime] {
        var query: PostgresQuery = """
            SELECT t.id, t.slug, t.status = 'active', t.always_on, t.provider_key_sealed, t.name, t.provider_base_url,
                   t.key_source = 'operator', o.fallback_key_sealed, o.fallback_base_url
            FROM tenants t LEFT JOIN operator_settings o ON o.id = 1 AND t.key_source = 'operator'
            """
        query.sql += " "
        query.sql += filter.sql
        query.binds = filter.binds
        let rows = try await self.database.query(query, logger: logger)
        var tenants: [TenantRuntime] = []
        for try await (id, slug, active, alwaysOn, sealed, name, baseURL, usesOperator, operatorSealed, operatorURL)
            in rows.decode((TenantID, String, Bool, Bool, Data?, String, String, Bool, Data?, String?).self) {
            tenants.append(TenantRuntime(
                id: id, slug: slug, active: active, alwaysOn: alwaysOn, sealedKey: sealed, usesOperatorKey: usesOperator,
                operatorSealedKey: operatorSealed, operatorBaseURL: operatorURL, name: name,
                // The operator's key goes only where the operator said: its base URL, never the tenant's.
                providerBaseURL: usesOperator ? (operatorURL ?? baseURL) : baseURL
            ))
        }
        return tenants
    }
}
