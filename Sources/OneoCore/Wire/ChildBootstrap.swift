/// The first frame the supervisor writes to every child: everything the child needs that must not
/// travel in argv or the environment. A processor alone receives a provider key, its own tenant's.
public struct ChildBootstrap: Sendable, Codable {
    public var type = "bootstrap"
    public var database: DatabaseSettings
    public var redis: RedisSettings?
    public var tenant: TenantID?
    public var providerKey: ProviderKey?
    /// The supervisor's pid: a child whose parent is not this process was orphaned before it
    /// could arm its parent-death signal, and exits.
    public var supervisor: Int32
    /// How the child's job leases are marked (`locked_by`), so that the supervisor can release
    /// them the moment the child dies.
    public var worker: String
    public var heartbeatIntervalMilliseconds: Int
    /// How long a SIGTERM'd child waits for its in-flight work before releasing it.
    public var drainTimeoutMilliseconds: Int

    public init(
        database: DatabaseSettings, redis: RedisSettings?, tenant: TenantID? = nil, providerKey: ProviderKey? = nil,
        supervisor: Int32, worker: String, heartbeatIntervalMilliseconds: Int, drainTimeoutMilliseconds: Int
    ) {
        self.database = database
        self.redis = redis
        self.tenant = tenant
        self.providerKey = providerKey
        self.supervisor = supervisor
        self.worker = worker
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
        self.drainTimeoutMilliseconds = drainTimeoutMilliseconds
    }
}
