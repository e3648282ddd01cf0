import Foundation
import Synchronization
public import Logging
public import OneoWire
public import OneoStore
public import OneoCore
import PostgresNIO
#if canImport(Glibc)
import Glibc
#endif

/// `oneo-ai serve`: starts the embedded PostgreSQL and Redis when no URLs are configured, applies
/// migrations, keeps the API running, starts a tenant's processor when it has work (or always, for
/// an always-on tenant), stops it when idle, restarts whatever dies, and answers operators on the
/// control socket. It parses nothing from outside but its configuration, the database, its
/// children's small frames and its owner's control requests.
public actor Supervisor {
    public struct Configuration: Sendable {
        public var dataDirectory: DataDirectory
        /// nil: embedded PostgreSQL under the data directory.
        public var database: DatabaseSettings?
        /// nil: embedded Redis under the data directory.
        public var redis: RedisSettings?
        public var masterKeyFile: String
        public var host: String
        public var port: Int
        /// Every tunable, checked; children receive it whole in their bootstrap frames.
        public var tunables: EngineTunables
        public var processorConcurrency: Int { self.tunables.processors.concurrency }
        /// How often always-on and inactive tenants are read again.
        public var tenantPollInterval: Duration { .tunable(milliseconds: self.tunables.supervision.tenantPollMilliseconds) }
        public var heartbeatInterval: Duration { .tunable(milliseconds: self.tunables.supervision.heartbeatIntervalMilliseconds) }
        /// A child silent this long is terminated and restarted.
        public var heartbeatTimeout: Duration { .tunable(milliseconds: self.tunables.supervision.heartbeatTimeoutMilliseconds) }
        /// Between SIGTERM (or a drain deadline) and SIGKILL.
        public var killGrace: Duration { .tunable(milliseconds: self.tunables.supervision.killGraceMilliseconds) }
        /// A processor with nothing in flight and nothing finished for this long is stopped.
        public var idleTimeout: Duration { .tunable(milliseconds: self.tunables.processors.idleTimeoutMilliseconds) }
        /// How long processors may finish in-flight jobs at shutdown, or by default on restart.
        public var drainTimeout: Duration { .tunable(milliseconds: self.tunables.processors.drainTimeoutMilliseconds) }
        public var restartPolicy = RestartPolicy()
        /// When root, tenant N's processor runs as uid base + N with gid base.
        public var processorUIDBase: UInt32 = 1_000_000_000
        /// With a database user that may not create roles: let the API and the queue manager
        /// share its credentials (no row-level security) instead of refusing to start.
        public var allowSharedDatabaseCredentials = false
        /// Options the API child is started with after its host and port (connection limits).
        public var apiArguments: [String] = []
        /// The web search executor's backend (SearXNG's base URL); nil: no web search.
        public var searchURL: String?
        /// Whether tools may reach a tenant's provider on a private address (`--allow-private-providers`).
        public var allowPrivateProviders = false

        public init(dataDirectory: DataDirectory, database: DatabaseSettings?, redis: RedisSettings?, masterKeyFile: String?, host: String, port: Int, tunables: EngineTunables) {
            self.dataDirectory = dataDirectory
            self.database = database
            self.redis = redis
            self.masterKeyFile = masterKeyFile ?? dataDirectory.masterKeyFile
            self.host = host
            self.port = port
            self.tunables = tunables
        }
    }

    let configuration: Configuration
    let logger: Logger
    let table = ProcessTable()
    let spawnThread = SpawnThread()
    let io: ChildIO
    let executable: String
    let hostName = ProcessInfo.processInfo.hostName
    var stopping = false
    var children: [String: SupervisedChild] = [:]
    /// Which processor serves each tenant.
    var processorOfTenant: [TenantID: String] = [:]
    /// Tenants whose row is being read to start a processor: one read, however many wake-ups.
    var tenantsBeingLookedUp: Set<TenantID> = []
    /// The workers of queue managers that exited: the next one releases their attempts.
    var retiredQueueWorkers: [String] = []
    /// Request ids of the frames a child must answer with `accepted` (drains, hand-overs).
    var nextRequest: UInt32 = 1
    /// The queue manager relayed a change of tenants: read them again now.
    let tenantsChanged: AsyncStream<Void>.Continuation
    let tenantChanges: AsyncStream<Void>
    /// Set once the database and the key sealer exist.
    var services: Services?
    /// Processors' tool calls to the executors.
    let tools: ToolRouter
    private let shutdownRequests: AsyncStream<Void>
    private let requestShutdown: AsyncStream<Void>.Continuation

    struct Services: Sendable {
        let database: PostgresClient
        let databaseSettings: DatabaseSettings
        /// What the API and the queue manager connect as: roles of their own where we may make them.
        let apiDatabase: DatabaseSettings
        let queueDatabase: DatabaseSettings
        /// What the file_search executor connects as (its role and the database's socket); nil
        /// where no role could be made or the database has no Unix socket: no file search.
        let filesDatabase: DatabaseSettings?
        let redisSettings: RedisSettings
        /// The instance's namespace in Redis (cache keys and ACL users).
        let cacheNamespace: String
        let sealer: KeySealer
        let directory: TenantDirectory
    }

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.io = ChildIO(maximumFrame: configuration.tunables.frames.childMessageBytes)
        self.tools = ToolRouter(logger: logger, searchBackend: configuration.searchURL, privateProviders: configuration.allowPrivateProviders)
        self.executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        (self.shutdownRequests, self.requestShutdown) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        (self.tenantChanges, self.tenantsChanged) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// The group that reaches the embedded PostgreSQL and Redis: the API and the queue manager,
    /// never a processor (nil when we are not root).
    var databaseGroup: gid_t? { geteuid() == 0 ? ProcessAccount.databaseGroup(uidBase: self.configuration.processorUIDBase) : nil }

    /// Runs until `beginShutdown`, then drains and stops every child and returns.
    public func run() async throws {
        if geteuid() != 0 {
            self.logger.warning("not running as root: processors run as serve's own uid, so tenants are not isolated from each other or from serve's files; run serve as root in production")
            self.logger.warning("not running as root: no tool executor is started (its jails would run as serve's own uid, next to the master key); fields with tools get none")
        }
        let embedded = try await self.startEmbeddedServices()
        let databaseSettings = self.configuration.database ?? self.configuration.dataDirectory.embeddedDatabase
        let redisSettings = try self.configuration.redis ?? self.embeddedRedisLogin()
        // Migrations, tenant rows and sealed keys: no job traffic, so two connections.
        let database = PostgresClient(configuration: databaseSettings.clientConfiguration(maximumConnections: self.configuration.tunables.supervision.connections, applicationName: "oneo-supervisor"), backgroundLogger: self.logger)
        var control: ControlServer?
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.run() }
                try await Migrator(client: database, logger: self.logger).migrate()
                let (apiDatabase, queueDatabase, filesDatabase) = try await self.childRoles(databaseSettings, client: database)
                if let filesDatabase {
                    let grants = FileSearchGrants.closures(database, logger: self.logger)
                    self.tools.setFileAccess(password: filesDatabase.password ?? "", grant: grants.make, revoke: grants.revoke)
                }
                self.services = Services(
                    database: database, databaseSettings: databaseSettings, apiDatabase: apiDatabase, queueDatabase: queueDatabase,
                    filesDatabase: filesDatabase,
                    redisSettings: redisSettings,
                    cacheNamespace: try await InstanceSettings.cacheNamespace(database, logger: self.logger),
                    sealer: try KeySealer(masterKeyFile: self.configuration.masterKeyFile),
                    directory: TenantDirectory(database: database)
                )
                control = try ControlServer.start(path: self.configuration.dataDirectory.controlSocket, supervisor: self, logger: self.logger)
                // A port file of an earlier run must not be read as this one's.
                unlink(self.configuration.dataDirectory.apiPortFile)
                self.supervise(self.addChild(name: Self.queueManagerName, role: .qmgr, launch: .queueManager))
                self.supervise(self.addChild(name: "api", role: .api, launch: .api))
                for tool in self.startableTools {
                    // The router brokers the connections the policy's egress lines allow, and no
                    // other, within its timeout: read once here, as the executors read it at start.
                    let routing = SandboxPaths.routing(tool: tool, executable: self.executable)
                    self.tools.configure(tool, egress: routing.egress, timeout: routing.timeout)
                    for slot in 1...self.configuration.tunables.tools.executors {
                        self.supervise(self.addChild(name: "tool:\(tool):\(slot)", role: .tool, launch: .toolExecutor(tool, slot: slot)))
                    }
                }
                group.addTask { await self.watchTenants() }
                group.addTask { await self.watchChildren() }
                group.addTask { await self.watchCacheUsers() }
                self.logger.notice("serving", metadata: [
                    "api": "http://\(self.configuration.host):\(self.configuration.port)", "database": "\(databaseSettings)",
                    "control": "\(self.configuration.dataDirectory.controlSocket)",
                ])
                for await _ in self.shutdownRequests { break }
                // Before anything stops: no restart and no new processor from here on.
                self.stopping = true
                self.logger.notice("shutting down: draining processors, then the queue manager and the API", metadata: ["drain.timeout": "\(self.configuration.drainTimeout)"])
                await self.stopAll(roles: [.processor], timeout: self.configuration.drainTimeout)
                // The queue manager commits what the processors reported while draining.
                await self.stopAll(roles: [.qmgr, .api], timeout: self.configuration.killGrace)
                control?.close()
                group.cancelAll()
            }
        } catch {
            self.stopping = true
            control?.close()
            await self.stopAll(roles: [.processor, .qmgr, .api], timeout: self.configuration.killGrace)
            await self.stopEmbedded(embedded)
            throw error
        }
        await self.stopEmbedded(embedded)
        self.logger.notice("stopped")
    }

    /// The tools whose executors this node starts.
    var startableTools: [String] {
        SandboxPaths.startableTools(executable: self.executable, searchURL: self.configuration.searchURL, fileSearch: self.services?.filesDatabase != nil)
    }

    /// Applies the API's, the queue manager's and the file-search executor's roles with passwords
    /// for this start, and returns the settings each connects with; where roles may not be
    /// created, the API and the queue manager keep ours and file search is not offered (nil).
    private func childRoles(_ settings: DatabaseSettings, client: PostgresClient) async throws -> (api: DatabaseSettings, queue: DatabaseSettings, files: DatabaseSettings?) {
        let roles = RoleSetup.roles(forDatabase: settings.database)
        let passwords = (api: RoleSetup.freshPassword(), queueManager: RoleSetup.freshPassword(), files: RoleSetup.freshPassword())
        switch try await RoleSetup.apply(roles, passwords: passwords, client: client, logger: self.logger) {
        case .applied:
            var api = settings
            api.username = roles.api
            api.password = passwords.api
            var queue = settings
            queue.username = roles.queueManager
            queue.password = passwords.queueManager
            var files = settings
            files.username = roles.files
            files.password = passwords.files
            self.logger.info("database roles applied", metadata: ["role.api": "\(roles.api)", "role.qmgr": "\(roles.queueManager)", "role.files": "\(roles.files)"])
            // The file executor reaches the database only through its Unix socket, bound into its jail.
            guard case .unixSocket = settings.endpoint else { return (api, queue, nil) }
            return (api, queue, files)
        case .notPermitted:
            guard self.configuration.allowSharedDatabaseCredentials else {
                throw ConfigurationError(
                    key: "DATABASE_URL",
                    problem: "names a user that may not create roles, so the API would run without row-level security; use a user with CREATEROLE (`oneo-ai migrate --print-roles` shows what is created), or accept the shared credentials with --shared-database-credentials"
                )
            }
            self.logger.warning("the database user may not create roles: the API and the queue manager share its credentials (no row-level security)", metadata: [
                "hint": "`oneo-ai migrate --print-roles` prints what a user with CREATEROLE would create",
            ])
            return (settings, settings, nil)
        }
    }

    /// The first SIGTERM or SIGINT: stop taking work, drain, stop children, return from `run`.
    public nonisolated func beginShutdown() {
        self.requestShutdown.yield()
    }

    /// The second signal: every child is killed now (PostgreSQL by its immediate shutdown).
    public func stopNow() {
        self.stopping = true
        for child in self.children.values {
            guard let pid = child.pid else { continue }
            kill(pid, child.role == .postgres ? SIGQUIT : SIGKILL)
        }
        self.logger.warning("second signal: children killed without draining")
    }
}
