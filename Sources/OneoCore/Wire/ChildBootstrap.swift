/// The first frame the supervisor writes to every child: everything the child needs that must not
/// travel in argv or the environment. A processor alone receives a provider key, its own tenant's.
public struct ChildBootstrap: Sendable, Codable {
    public var type = "bootstrap"
    public var database: DatabaseSettings
    public var redis: RedisSettings?
    public var tenant: TenantID?
    public var providerKey: ProviderKey?

    public init(database: DatabaseSettings, redis: RedisSettings?, tenant: TenantID? = nil, providerKey: ProviderKey? = nil) {
        self.database = database
        self.redis = redis
        self.tenant = tenant
        self.providerKey = providerKey
    }
}
