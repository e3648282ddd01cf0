public import OneoCore
public import OneoWire
public import Foundation
public import Logging
public import PostgresNIO

/// Adds tenants and their API tokens: the one place the operator CLI and the benchmark do it.
/// A provider key is sealed before it is written, bound to the new tenant's id.
public struct TenantRegistry: Sendable {
    public struct Registration: Sendable {
        public var slug: String
        public var name: String
        public var baseURL: String
        public var model: String
        public var key: ProviderKey?
        public var active: Bool

        public init(slug: String, name: String, baseURL: String, model: String, key: ProviderKey?, active: Bool = true) {
            self.slug = slug
            self.name = name
            self.baseURL = baseURL
            self.model = model
            self.key = key
            self.active = active
        }
    }

    public let database: PostgresClient
    /// Needed only to add a tenant with a provider key.
    public let sealer: KeySealer?

    public init(database: PostgresClient, sealer: KeySealer?) {
        self.database = database
        self.sealer = sealer
    }

    /// Inserts the tenant and tells running supervisors, which start its processor.
    public func add(_ tenant: Registration, logger: Logger) async throws -> TenantID {
        do {
            return try await self.database.withTransaction(logger: logger) { connection in
                let status = tenant.active ? "active" : "suspended"
                let rows = try await connection.query(
                    """
                    INSERT INTO tenants (slug, name, provider_base_url, default_model, status)
                    VALUES (\(tenant.slug), \(tenant.name), \(tenant.baseURL), \(tenant.model), \(status)) RETURNING id
                    """,
                    logger: logger
                )
                var inserted: TenantID?
                for try await id in rows.decode(TenantID.self) { inserted = id }
                guard let id = inserted else { throw RegistryError(problem: "tenant insert returned no row") }
                if let key = tenant.key {
                    guard let sealer = self.sealer else { throw RegistryError(problem: "a provider key needs the master key to seal it") }
                    let sealed = try sealer.seal(key, tenant: id)
                    try await connection.query("UPDATE tenants SET provider_key_sealed = \(sealed) WHERE id = \(id)", logger: logger)
                }
                try await connection.query("SELECT pg_notify(\(JobChannel.tenantsChanged), '')", logger: logger)
                return id
            }
        } catch let error as PostgresTransactionError {
            if let psql = error.closureError as? PSQLError, psql.serverInfo?[.sqlState] == "23505" {
                throw RegistryError(problem: "a tenant with slug '\(tenant.slug)' already exists")
            }
            throw error.closureError ?? error
        }
    }

    /// Replaces the tenant's own sensitive field names (the built-in list always applies too).
    /// The API sees the change within seconds, processors from their next claim.
    public func setSensitiveNames(tenant slug: String, _ names: [String], logger: Logger) async throws {
        let cleaned = names.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        let rows = try await self.database.query(
            "UPDATE tenants SET sensitive_fields = \(cleaned), updated_at = now() WHERE slug = \(slug) RETURNING id",
            logger: logger
        )
        var updated = false
        for try await _ in rows { updated = true }
        guard updated else { throw RegistryError(problem: "no tenant with slug '\(slug)'") }
    }

    /// A setting of the tenant that its processor reads when it starts.
    public enum Setting: Sendable {
        case providerKey(ProviderKey)
        case monthlyBudget(Microdollars?)
        /// The zone whose calendar months the budgets run by; refused unless PostgreSQL knows it.
        case timeZone(String)
        case defaultModel(String)
        case baseURL(String)
        case alwaysOn(Bool)
        /// Whether the tenant's fields may call tools (from each job's next claim).
        case tools(Bool)
        /// Whose provider key the tenant's processor uses: its own, or the operator's fallback.
        case keySource(KeySource)
    }

    public enum KeySource: String, Sendable, CaseIterable {
        case own, `operator`
    }

    /// Stores the operator's fallback key, sealed together with the one base URL it may be sent
    /// to (a tenant's own base URL never receives it), and tells running supervisors.
    public func setOperatorKey(_ key: ProviderKey, baseURL: String, logger: Logger) async throws {
        guard let sealer = self.sealer else { throw RegistryError(problem: "a provider key needs the master key to seal it") }
        let sealed = try sealer.seal(key, for: .operatorFallback(baseURL: baseURL))
        try await self.database.query(
            """
            WITH stored AS (
                INSERT INTO operator_settings (id, fallback_key_sealed, fallback_base_url) VALUES (1, \(sealed), \(baseURL))
                ON CONFLICT (id) DO UPDATE SET fallback_key_sealed = EXCLUDED.fallback_key_sealed,
                    fallback_base_url = EXCLUDED.fallback_base_url, updated_at = now()
                RETURNING id)
            SELECT pg_notify(\(JobChannel.tenantsChanged), '') FROM stored
            """,
            logger: logger
        )
    }

    /// The slugs of the tenants that use the operator's key.
    public func tenantsUsingOperatorKey(logger: Logger) async throws -> [String] {
        let rows = try await self.database.query("SELECT slug FROM tenants WHERE key_source = 'operator' ORDER BY slug", logger: logger)
        var slugs: [String] = []
        for try await slug in rows.decode(String.self) { slugs.append(slug) }
        return slugs
    }

    /// A tenant as `tenant show` prints it: settings, never a key (only whether one is set).
    public struct Overview: Sendable {
        public let id: TenantID
        public let slug: String
        public let name: String
        public let status: String
        public let baseURL: String
        public let defaultModel: String
        public let keySource: KeySource
        public let ownKeySet: Bool
        public let operatorKeySet: Bool
        /// Where the operator's key goes (and so this tenant's calls, when it uses that key).
        public let operatorBaseURL: String?
        public let monthlyBudget: Microdollars?
        public let alwaysOn: Bool
        public let sensitiveFields: [String]
        public let toolsEnabled: Bool
    }

    public func overview(tenant slug: String, logger: Logger) async throws -> Overview {
        let rows = try await self.database.query(
            """
            SELECT t.id, t.slug, t.name, t.status, t.provider_base_url, t.default_model, t.key_source,
                   t.provider_key_sealed IS NOT NULL,
                   o.fallback_key_sealed IS NOT NULL, o.fallback_base_url,
                   t.monthly_budget_micros, t.always_on, t.sensitive_fields, t.tools_enabled
            FROM tenants t LEFT JOIN operator_settings o ON o.id = 1 WHERE t.slug = \(slug)
            """,
            logger: logger
        )
        for try await (id, slug, name, status, baseURL, model, source, ownKey, operatorKey, operatorURL, budget, alwaysOn, sensitive, tools)
            in rows.decode((TenantID, String, String, String, String, String, String, Bool, Bool?, String?, Int64?, Bool, [String], Bool).self) {
            return Overview(
                id: id, slug: slug, name: name, status: status, baseURL: baseURL, defaultModel: model,
                keySource: KeySource(rawValue: source) ?? .own, ownKeySet: ownKey, operatorKeySet: operatorKey ?? false, operatorBaseURL: operatorURL,
                monthlyBudget: budget.map(Microdollars.init), alwaysOn: alwaysOn, sensitiveFields: sensitive, toolsEnabled: tools
            )
        }
        throw RegistryError(problem: "no tenant with slug '\(slug)'")
    }

    /// Changes one setting and tells running supervisors (always-on changes which processors run).
    public func update(tenant slug: String, _ setting: Setting, logger: Logger) async throws {
        do {
            try await self.applyUpdate(tenant: slug, setting, logger: logger)
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error
        }
    }

    private func applyUpdate(tenant slug: String, _ setting: Setting, logger: Logger) async throws {
        try await self.database.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("SELECT id FROM tenants WHERE slug = \(slug) FOR UPDATE", logger: logger)
            var found: TenantID?
            for try await id in rows.decode(TenantID.self) { found = id }
            guard let id = found else { throw RegistryError(problem: "no tenant with slug '\(slug)'") }
            switch setting {
            case .providerKey(let key):
                guard let sealer = self.sealer else { throw RegistryError(problem: "a provider key needs the master key to seal it") }
                let sealed = try sealer.seal(key, tenant: id)
                try await connection.query("UPDATE tenants SET provider_key_sealed = \(sealed), updated_at = now() WHERE id = \(id)", logger: logger)
            case .monthlyBudget(let budget):
                try await connection.query("UPDATE tenants SET monthly_budget_micros = \(budget?.rawValue), updated_at = now() WHERE id = \(id)", logger: logger)
            case .timeZone(let zone):
                let known = try await connection.query(
                    """
                    UPDATE tenants SET time_zone = \(zone), updated_at = now()
                    WHERE id = \(id) AND EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = \(zone))
                    RETURNING id
                    """,
                    logger: logger
                )
                var updated = false
                for try await _ in known { updated = true }
                guard updated else { throw RegistryError(problem: "unknown time zone '\(PlainText.bounded(zone, 64))'; use a name from pg_timezone_names, e.g. Europe/Oslo") }
            case .defaultModel(let model):
                try await connection.query("UPDATE tenants SET default_model = \(model), updated_at = now() WHERE id = \(id)", logger: logger)
            case .baseURL(let url):
                try await connection.query("UPDATE tenants SET provider_base_url = \(url), updated_at = now() WHERE id = \(id)", logger: logger)
            case .alwaysOn(let on):
                try await connection.query("UPDATE tenants SET always_on = \(on), updated_at = now() WHERE id = \(id)", logger: logger)
            case .tools(let on):
                try await connection.query("UPDATE tenants SET tools_enabled = \(on), updated_at = now() WHERE id = \(id)", logger: logger)
            case .keySource(let source):
                try await connection.query("UPDATE tenants SET key_source = \(source.rawValue), updated_at = now() WHERE id = \(id)", logger: logger)
            }
            try await connection.query("SELECT pg_notify(\(JobChannel.tenantsChanged), '')", logger: logger)
        }
    }

    /// Creates a token for the tenant and returns it; it is never stored, only its hash.
    public func createToken(tenant slug: String, name: String, permissions: [APIToken.Permission], logger: Logger) async throws -> String {
        let token = APIToken.generate()
        let rows = try await self.database.query(
            """
            INSERT INTO api_tokens (tenant_id, name, token_hash, token_prefix, permissions)
            SELECT id, \(name), \(APIToken.hash(token)), \(APIToken.displayPrefix(token)), \(permissions.map(\.rawValue))
            FROM tenants WHERE slug = \(slug)
            RETURNING id
            """,
            logger: logger
        )
        var created = false
        for try await _ in rows { created = true }
        guard created else { throw RegistryError(problem: "no tenant with slug '\(slug)'") }
        return token
    }
}

extension TenantRegistry {
    /// One API token as an operator sees it: never the token, only its prefix.
    public struct TokenListing: Sendable {
        public let id: Int64
        public let name: String
        public let prefix: String
        public let permissions: [String]
        public let createdAt: Date
        public let revokedAt: Date?
    }

    /// A tenant's tokens, newest first, revoked ones included.
    public func tokens(tenant slug: String, logger: Logger) async throws -> [TokenListing] {
        guard try await self.tenantExists(slug, logger: logger) else { throw RegistryError(problem: "no tenant with slug '\(slug)'") }
        let rows = try await self.database.query(
            """
            SELECT k.id, k.name, k.token_prefix, k.permissions, k.created_at, k.revoked_at
            FROM api_tokens k JOIN tenants t ON t.id = k.tenant_id
            WHERE t.slug = \(slug) ORDER BY k.id DESC
            """,
            logger: logger
        )
        var tokens: [TokenListing] = []
        for try await (id, name, prefix, permissions, created, revoked) in rows.decode((Int64, String, String, [String], Date, Date?).self) {
            tokens.append(TokenListing(id: id, name: name, prefix: prefix, permissions: permissions, createdAt: created, revokedAt: revoked))
        }
        return tokens
    }

    /// Revokes one of a tenant's tokens by id (as `token list` shows it). The API refuses it
    /// within five seconds (its cache of callers). Revoking a revoked token is an error an
    /// operator can read, not a silent success.
    public func revokeToken(tenant slug: String, id: Int64, logger: Logger) async throws {
        let rows = try await self.database.query(
            """
            UPDATE api_tokens k SET revoked_at = now()
            FROM tenants t
            WHERE t.id = k.tenant_id AND t.slug = \(slug) AND k.id = \(id) AND k.revoked_at IS NULL
            RETURNING k.id
            """,
            logger: logger
        )
        var revoked = false
        for try await _ in rows { revoked = true }
        guard revoked else { throw RegistryError(problem: "tenant '\(slug)' has no unrevoked token with id \(id); see `oneo-ai token list --tenant \(slug)`") }
    }

    private func tenantExists(_ slug: String, logger: Logger) async throws -> Bool {
        var found = false
        for try await _ in try await self.database.query("SELECT 1 FROM tenants WHERE slug = \(slug)", logger: logger) { found = true }
        return found
    }
}

/// A tenant or token that cannot be added, said the way an operator needs to hear it.
public struct RegistryError: Error, Sendable, CustomStringConvertible {
    public let problem: String
    public init(problem: String) { self.problem = problem }
    public var description: String { self.problem }
}
