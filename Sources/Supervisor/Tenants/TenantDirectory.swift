import Foundation
import Logging
import OneoCore
import PostgresNIO

/// A tenant as the supervisor needs it to run its processor.
struct TenantRuntime: Sendable, Hashable {
    let id: TenantID
    let slug: String
    let sealedKey: Data?
}

/// Reads which tenants should have a processor.
struct TenantDirectory: Sendable {
    let database: PostgresClient

    func activeTenants(logger: Logger) async throws -> [TenantRuntime] {
        let rows = try await self.database.query(
            "SELECT id, slug, provider_key_sealed FROM tenants WHERE status = 'active' ORDER BY id",
            logger: logger
        )
        var tenants: [TenantRuntime] = []
        for try await (id, slug, sealed) in rows.decode((TenantID, String, Data?).self) {
            tenants.append(TenantRuntime(id: id, slug: slug, sealedKey: sealed))
        }
        return tenants
    }
}
