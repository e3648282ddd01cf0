import Foundation
import Hummingbird
import Logging
import OneoCore
import PostgresNIO

/// Resolves `Authorization: Bearer <token>` to its tenant by the token's SHA-256. Unknown,
/// revoked or missing tokens get 401 before any route runs.
struct TokenAuthenticator: RouterMiddleware {
    typealias Context = APIRequestContext

    let database: PostgresClient

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError.unauthenticated
        }
        let token = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        guard token.count <= 200 else { throw APIError.unauthenticated }
        let hash = APIToken.hash(token)
        let rows = try await self.database.query(
            """
            SELECT t.id, t.name, t.default_model, k.name, k.permissions
            FROM api_tokens k JOIN tenants t ON t.id = k.tenant_id
            WHERE k.token_hash = \(hash) AND k.revoked_at IS NULL
            """,
            logger: context.logger
        )
        var context = context
        for try await (tenant, tenantName, model, tokenName, permissions) in rows.decode((TenantID, String, String, String, [String]).self) {
            context.caller = Caller(
                tenant: tenant,
                tenantName: tenantName,
                defaultModel: model,
                tokenName: tokenName,
                permissions: Set(permissions.compactMap(APIToken.Permission.init(rawValue:)))
            )
            context.logger[metadataKey: "tenant.id"] = "\(tenant)"
        }
        guard context.caller != nil else { throw APIError.unauthenticated }
        return try await next(request, context)
    }
}
