import Foundation
public import Logging
public import OneoCore
import PostgresNIO
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// `oneo-ai serve`: starts the embedded PostgreSQL and Redis when no URLs are configured, applies
/// migrations, then keeps the API and one processor per active tenant running, restarting any
/// that exits. It parses nothing from outside but its own configuration and the database.
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
        public var processorConcurrency: Int
        public var tenantPollInterval: Duration

        public init(dataDirectory: DataDirectory, database: DatabaseSettings?, redis: RedisSettings?, masterKeyFile: String?, host: String, port: Int, processorConcurrency: Int, tenantPollInterval: Duration = .seconds(2)) {
            self.dataDirectory = dataDirectory
            self.database = database
            self.redis = redis
            self.masterKeyFile = masterKeyFile ?? dataDirectory.masterKeyFile
            self.host = host
            self.port = port
            self.processorConcurrency = processorConcurrency
            self.tenantPollInterval = tenantPollInterval
        }
    }

    private let configuration: Configuration
    private let logger: Logger
    private let table = ProcessTable()
    private let executable: String
    private var stopping = false
    /// The pid each supervised child currently runs as, by child name.
    private var current: [String: pid_t] = [:]
    private var supervised: [String: Task<Void, Never>] = [:]
    /// Our end of each running child's socket, by child name.
    private var channels: [String: FrameSocket] = [:]
    /// Which processor serves each tenant.
    private var processorOfTenant: [TenantID: String] = [:]

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Runs until SIGTERM or SIGINT, then stops every child and returns.
    public func run() async throws {
        let embedded = try await self.startEmbeddedServices()
        let databaseSettings = self.configuration.database ?? self.configuration.dataDirectory.embeddedDatabase
        let redisSettings = self.configuration.redis ?? self.configuration.dataDirectory.embeddedRedis
        let sealer = try KeySealer(masterKeyFile: self.configuration.masterKeyFile)
        let database = PostgresClient(configuration: databaseSettings.clientConfiguration(maximumConnections: 4), backgroundLogger: self.logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.run() }
                try await Migrator(client: database, logger: self.logger).migrate()
                self.keepRunning(ChildSpec(
                    role: .api, name: "api", executable: self.executable,
                    arguments: ["api", "--host", self.configuration.host, "--port", String(self.configuration.port)],
                    bootstrap: ChildBootstrap(database: databaseSettings, redis: redisSettings)
                ))
                group.addTask {
                    await self.watchTenants(TenantDirectory(database: database), sealer: sealer, database: databaseSettings, redis: redisSettings)
                }
                self.logger.notice("serving", metadata: ["api": "http://\(self.configuration.host):\(self.configuration.port)", "database": "\(databaseSettings)"])
                try? await gracefulShutdown()
                // Before anything stops: no restart and no new processor from here on.
                self.stopping = true
                self.logger.notice("shutting down: draining processors, then the API")
                await self.stopAll(roles: [.processor])
                await self.stopAll(roles: [.api])
                group.cancelAll()
            }
        } catch {
            self.stopping = true
            await self.stopAll(roles: [.processor, .api])
            await self.stopEmbedded(embedded)
            throw error
        }
        await self.stopEmbedded(embedded)
        self.logger.notice("stopped")
    }

    // MARK: Children

    /// Starts a child and restarts it whenever it exits, with exponential backoff (100 ms doubling
    /// to 30 s, reset after 10 s of healthy running), until it is stopped.
    private func keepRunning(_ spec: ChildSpec) {
        guard self.supervised[spec.name] == nil, !self.stopping else { return }
        self.supervised[spec.name] = Task {
            var delay = Duration.milliseconds(50)
            while !self.stopping, self.supervised[spec.name] != nil {
                let started = ContinuousClock.now
                do {
                    let child = try Spawner.spawn(spec)
                    self.table.childStarted()
                    self.current[spec.name] = child.pid
                    self.channels[spec.name] = child.channel
                    self.logger.info("child started", metadata: ["child": "\(spec.name)", "child.pid": "\(child.pid)"])
                    let status = await self.table.waitForExit(child.pid)
                    self.current[spec.name] = nil
                    self.channels[spec.name] = nil
                    if self.stopping || self.supervised[spec.name] == nil {
                        self.logger.info("child stopped", metadata: ["child": "\(spec.name)", "child.exit": "\(status)"])
                        break
                    }
                    delay = Self.nextDelay(after: delay, ranFor: ContinuousClock.now - started)
                    self.logger.error("child exited; restarting", metadata: ["child": "\(spec.name)", "child.exit": "\(status)", "restart.delay": "\(delay)"])
                } catch {
                    delay = Self.nextDelay(after: delay, ranFor: .zero)
                    self.logger.error("child failed to start", metadata: ["child": "\(spec.name)", "error": "\(error)", "restart.delay": "\(delay)"])
                }
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// The wait before a restart: back to 100 ms after 10 s of healthy running, else doubled, to 30 s.
    private static func nextDelay(after delay: Duration, ranFor uptime: Duration) -> Duration {
        uptime > .seconds(10) ? .milliseconds(100) : min(delay * 2, .seconds(30))
    }

    /// SIGTERM to each child of these roles, then SIGKILL after the grace period.
    private func stopAll(roles: Set<ChildSpec.Role>, grace: Duration = .seconds(15)) async {
        let names = self.supervised.keys.filter { name in
            roles.contains { role in name == role.rawValue || name.hasPrefix(role.rawValue + ":") }
        }
        await withTaskGroup(of: Void.self) { group in
            for name in names { group.addTask { await self.stop(name, grace: grace) } }
        }
    }

    private func stop(_ name: String, grace: Duration) async {
        guard let task = self.supervised.removeValue(forKey: name) else { return }
        if let pid = self.current[name] {
            // PostgreSQL's SIGTERM is a "smart" shutdown that waits for clients; SIGINT is "fast".
            kill(pid, name == "postgres" ? SIGINT : SIGTERM)
            let killer = Task {
                try await Task.sleep(for: grace)
                self.logger.warning("child ignored SIGTERM; killing", metadata: ["child": "\(name)", "child.pid": "\(pid)"])
                kill(pid, SIGKILL)
            }
            await task.value
            killer.cancel()
        } else {
            task.cancel()
            await task.value
        }
    }

    // MARK: Tenants

    /// Keeps one processor per active tenant. A tenant added or suspended while we run is picked
    /// up at once through the tenants channel, or within the poll interval if a notification is lost.
    private func watchTenants(_ directory: TenantDirectory, sealer: KeySealer, database: DatabaseSettings, redis: RedisSettings) async {
        let (changes, notify) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.listen(directory.database, on: JobChannel.tenantsChanged) { _ in notify.yield() }
            }
            group.addTask {
                await self.listen(directory.database, on: JobChannel.jobsQueued) { payload in
                    guard let tenant = TenantID(parsing: payload) else { return }
                    await self.wakeProcessor(of: tenant)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    notify.yield()
                    try? await Task.sleep(for: self.configuration.tenantPollInterval)
                }
            }
            for await _ in changes {
                guard !Task.isCancelled, !self.stopping else { break }
                await self.reconcileProcessors(directory, sealer: sealer, database: database, redis: redis)
            }
            group.cancelAll()
        }
    }

    /// Holds one connection in LISTEN on `channel`, reconnecting after failures (the processors'
    /// and our own polls cover what is missed meanwhile).
    private nonisolated func listen(_ database: PostgresClient, on channel: String, _ handle: @Sendable (String) async -> Void) async {
        while !Task.isCancelled {
            do {
                try await database.withConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        for try await notification in notifications { await handle(notification.payload) }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("listener failed; relying on polling until it reconnects", metadata: ["channel": "\(channel)", "error": "\(SafeErrorDescription.of(error))"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Relays "work queued" to the tenant's processor. Never blocks: if its socket is full, the
    /// processor has unread wake-ups already.
    private func wakeProcessor(of tenant: TenantID) {
        guard let name = self.processorOfTenant[tenant], let channel = self.channels[name] else { return }
        channel.trySend(SupervisorMessage.wake.frame)
    }

    /// Starts a processor for each active tenant without one, and stops those of tenants that
    /// are no longer active.
    private func reconcileProcessors(_ directory: TenantDirectory, sealer: KeySealer, database: DatabaseSettings, redis: RedisSettings) async {
        guard !self.stopping else { return }
        do {
            let tenants = try await directory.activeTenants(logger: self.logger)
            let wanted = Set(tenants.map { "processor:\($0.slug)" })
            for name in self.supervised.keys where name.hasPrefix("processor:") && !wanted.contains(name) {
                self.logger.notice("tenant no longer active; stopping its processor", metadata: ["child": "\(name)"])
                Task { await self.stop(name, grace: .seconds(15)) }
            }
            for tenant in tenants { self.processorOfTenant[tenant.id] = "processor:\(tenant.slug)" }
            for tenant in tenants where self.supervised["processor:\(tenant.slug)"] == nil {
                do {
                    let key = try tenant.sealedKey.map { sealed throws(SecretError) in try sealer.open(sealed, tenant: tenant.id) }
                    self.keepRunning(ChildSpec(
                        role: .processor, name: "processor:\(tenant.slug)", executable: self.executable,
                        arguments: ["processor", "--tenant", tenant.slug, "--concurrency", String(self.configuration.processorConcurrency)],
                        bootstrap: ChildBootstrap(database: database, redis: redis, tenant: tenant.id, providerKey: key)
                    ))
                } catch {
                    self.logger.error("cannot open tenant's provider key; its processor is not started", metadata: ["tenant": "\(tenant.slug)", "error": "\(error)"])
                }
            }
        } catch {
            self.logger.error("reading tenants failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
        }
    }

    // MARK: Embedded services

    private struct Embedded {
        var postgres: String?
        var redis: String?
    }

    private func startEmbeddedServices() async throws -> Embedded {
        var embedded = Embedded()
        let account = ServiceAccount.forServers()
        try FileManager.default.createDirectory(atPath: self.configuration.dataDirectory.root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try FileManager.default.createDirectory(atPath: self.configuration.dataDirectory.runDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if self.configuration.database == nil {
            let postgres = EmbeddedPostgres(directory: self.configuration.dataDirectory, account: account, logger: self.logger)
            if let initdb = try postgres.initdbSpec() {
                self.logger.notice("initializing embedded PostgreSQL", metadata: ["path": "\(self.configuration.dataDirectory.postgresData)"])
                let child = try Spawner.spawn(initdb)
                self.table.childStarted()
                let status = await self.table.waitForExit(child.pid)
                guard status == .exited(0) else {
                    throw EmbeddedServiceError(service: "initdb", detail: "failed with \(status); see its output above")
                }
            }
            self.keepRunning(try postgres.serverSpec())
            embedded.postgres = "postgres"
            try await self.waitUntil("postgres", deadline: .seconds(60)) { postgres.isReady() }
            try await postgres.createDatabaseIfMissing()
        }
        if self.configuration.redis == nil {
            let redis = EmbeddedRedis(directory: self.configuration.dataDirectory)
            self.keepRunning(try redis.serverSpec())
            embedded.redis = "redis"
            try await self.waitUntil("redis", deadline: .seconds(30)) { redis.isReady() }
        }
        return embedded
    }

    private func stopEmbedded(_ embedded: Embedded) async {
        // Redis first: nothing durable lives there; PostgreSQL last, after every client.
        if let redis = embedded.redis { await self.stop(redis, grace: .seconds(10)) }
        if let postgres = embedded.postgres { await self.stop(postgres, grace: .seconds(30)) }
    }

    /// Polls a readiness check every 50 ms until it holds or the deadline passes.
    private func waitUntil(_ service: String, deadline: Duration, _ ready: @Sendable () -> Bool) async throws {
        let end = ContinuousClock.now + deadline
        while !ready() {
            guard ContinuousClock.now < end else {
                throw EmbeddedServiceError(service: service, detail: "not ready after \(deadline); see its log lines above")
            }
            guard self.current[service] != nil || self.supervised[service] != nil else {
                throw EmbeddedServiceError(service: service, detail: "exited during start; see its log lines above")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        self.logger.info("embedded service ready", metadata: ["service": "\(service)"])
    }
}
