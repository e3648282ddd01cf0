import Foundation
import Hummingbird
import Logging
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO

/// Resolves `Authorization: Bearer <token>` to its tenant by the token's SHA-256, through the one
/// function the API's role may call across tenants (`oneo_caller`: no token table, no keys). Unknown,
/// revoked or missing tokens get 401, a suspended tenant's tokens 403, before any route runs.
struct TokenAuthenticator: RouterMiddleware {
    typealias Context = APIRequestContext

    let database: PostgresClient
    /// Token hash → caller, for five seconds: a revoked token stops working within that time.
    let callers = ShortLivedCache<Data, Caller>(lifetime: .seconds(5))

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError.unauthenticated
        }
        let token = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        guard token.count <= 200 else { throw APIError.unauthenticated }
        let hash = APIToken.hash(token)
        var context = context
        if let caller = self.callers.value(for: hash) {
            context.caller = caller
            context.logger[metadataKey: "tenant.id"] = "\(caller.tenant)"
            return try await next(request, context)
        }
        let rows = try await self.database.query(
            """
            SELECT tenant_id, tenant_name, default_model, sensitive_fields, token_name, permissions, active
            FROM oneo_caller(\(hash))
            """,
            logger: context.logger
        )
        for try await (tenant, tenantName, model, sensitive, tokenName, permissions, active) in rows.decode((TenantID, String, String, [String], String, [String], Bool).self) {
            // A suspended tenant's data is not served, nor its jobs queued, until it is active.
            guard active else { throw APIError.tenantSuspended }
            context.caller = Caller(
                tenant: tenant,
                tenantName: tenantName,
                defaultModel: model,
                sensitiveNames: sensitive,
                tokenName: tokenName,
                permissions: Set(permissions.compactMap(APIToken.Permission.init(rawValue:)))
            )
            context.logger[metadataKey: "tenant.id"] = "\(tenant)"
        }
        guard let caller = context.caller else { throw APIError.unauthenticated }
        self.callers.store(caller, for: hash)
        return try await next(request, context)
    }
}
