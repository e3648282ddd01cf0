/// The first frame the supervisor writes to every child: everything the child needs that must not
/// travel in argv or the environment. A processor alone receives a provider key, its own tenant's,
/// and no database settings: it has no database access at all.
public struct ChildBootstrap: Sendable, Codable {
    public var type = "bootstrap"
    /// The API's and the queue manager's; nil for a processor.
    public var database: DatabaseSettings?
    public var redis: RedisSettings?
    public var tenant: TenantID?
    public var providerKey: ProviderKey?
    /// The supervisor's pid: a child whose parent is not this process was orphaned before it
    /// could arm its parent-death signal, and exits.
    public var supervisor: Int32
    /// How the child's job leases are marked (`locked_by`): the queue manager's.
    public var worker: String
    /// A processor's tenant as it runs: display name (for `{tenant_name}`) and provider base URL.
    public var tenantName: String?
    public var providerBaseURL: String?
    /// For the queue manager: the workers of earlier queue managers, whose attempts it releases.
    public var retiredWorkers: [String] = []
    /// For the queue manager: the key it signs tool tickets with (the supervisor checks them).
    /// Random per supervisor start; never logged.
    public var toolTicketKey: [UInt8]? = nil
    /// For the queue manager: the tools with executors on this node, the only ones it grants.
    public var startedTools: [String] = []
    /// Every tunable (pool sizes, polls, leases, frame caps, heartbeat, drain): a child reads
    /// its settings from here and nowhere else.
    public var tunables: EngineTunables

    public init(
        database: DatabaseSettings?, redis: RedisSettings?, tenant: TenantID? = nil, providerKey: ProviderKey? = nil,
        supervisor: Int32, worker: String, tunables: EngineTunables
    ) {
        self.database = database
        self.redis = redis
        self.tenant = tenant
        self.providerKey = providerKey
        self.supervisor = supervisor
        self.worker = worker
        self.tunables = tunables
    }
}
