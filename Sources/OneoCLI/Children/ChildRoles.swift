import API
import ArgumentParser
import CProcess
import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore
import PostgresNIO
import Processor
import QueueManager
import ServiceLifecycle
import UnixSignals

struct APIChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api", abstract: "(started by serve) The HTTP API process.", shouldDisplay: false
    )

    @Option var host: String = "127.0.0.1"
    @Option var port: Int = 8000
    @Option var maxConnections: Int = 4_096
    @Option var maxConnectionsPerAddress: Int = 256
    @Option var headerTimeout: Double = 20
    @Option var bodyTimeout: Double = 30

    func run() async throws {
        LogSetup.bootstrap()
        let logger = Logger(label: "oneo.api")
        // Every tenant's requests pass through here, with the database password: not dumpable.
        _ = oneo_set_dumpable(0)
        // Every open connection is a descriptor: take the hard limit, and keep the cap below it
        // with room for the database pool and the supervisor link.
        let descriptors = FileDescriptorLimit.raiseToHard()
        let connections = ConnectionSettings(
            maximum: max(1, min(self.maxConnections, descriptors - 128)), perAddress: self.maxConnectionsPerAddress,
            headTimeout: .milliseconds(Int64(self.headerTimeout * 1000)), bodyTimeout: .milliseconds(Int64(self.bodyTimeout * 1000))
        )
        if connections.maximum < self.maxConnections {
            logger.warning("connection cap lowered to fit the descriptor limit", metadata: ["http.max_connections": "\(connections.maximum)", "nofile": "\(descriptors)"])
        }
        let link = try await SupervisorLink.connect(role: "api")
        guard let settings = link.bootstrap.database else { throw ValidationError("the bootstrap frame carries no database settings") }
        // The engine's connections stay few whatever the number of tenants: the API's pool, the
        // queue manager's four, the supervisor's two.
        let database = PostgresClient(configuration: settings.clientConfiguration(maximumConnections: link.bootstrap.tunables.api.connections, applicationName: "oneo-api"), backgroundLogger: logger)
        let application = APIServer.application(
            database: database, host: self.host, port: self.port, connections: connections, tunables: link.bootstrap.tunables,
            health: link, redis: link.bootstrap.redis, logger: logger
        ) { port in
            link.tell(.listening(port: port))
            link.ready()
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: application)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        link.onDrain { _ in Task { await group.triggerGracefulShutdown() } }
        let heartbeats = Task { await link.heartbeats { (0, 0) } }
        defer { heartbeats.cancel() }
        try await group.run()
    }
}

struct ProcessorChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "processor", abstract: "(started by serve) One tenant's job processor.", shouldDisplay: false
    )

    @Option(help: "The tenant's slug; must match the tenant of the bootstrap frame.")
    var tenant: String


    func run() async throws {
        // The one process that holds the tenant's provider key: no core dumps, and no reading
        // of our memory or environment through /proc or ptrace, even by our own uid.
        _ = oneo_set_dumpable(0)
        LogSetup.bootstrap()
        var logger = Logger(label: "oneo.processor")
        logger[metadataKey: "tenant"] = "\(self.tenant)"
        let link = try await SupervisorLink.connect(role: "processor \(self.tenant)")
        let bootstrap = link.bootstrap
        // No database: jobs arrive from the queue manager, and the bootstrap says who we are.
        guard let tenantID = bootstrap.tenant, let name = bootstrap.tenantName, let baseURL = bootstrap.providerBaseURL else {
            throw ValidationError("the bootstrap frame does not describe a tenant")
        }
        guard let url = URL(string: baseURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            logger.critical("the tenant's provider base URL is not an http(s) URL; fix it with `oneo-ai tenant set-base-url`")
            throw ExitCode(78)
        }
        let processor = ProcessorService(
            settings: .init(
                tenant: tenantID, tenantName: name, baseURL: baseURL, key: bootstrap.providerKey, tunables: bootstrap.tunables,
                redis: bootstrap.redis
            ),
            connections: link.queueConnections,
            toolConnections: link.toolConnections,
            logger: logger,
            queueLost: { link.tell(.queueLost) },
            toolsLost: { link.tell(.toolsLost) }
        )
        let services = ServiceGroup(configuration: .init(services: [.init(service: processor)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        link.onDrain { timeout in
            processor.drain(within: timeout)
            Task { await services.triggerGracefulShutdown() }
        }
        let heartbeats = Task {
            await link.heartbeats({ (processor.activity.inFlight, processor.activity.completed) }, providerCall: { processor.providerCall })
        }
        defer { heartbeats.cancel() }
        link.ready()
        // The base URL as scheme, host and path: a user:password or a ?key= in it stays out of logs.
        var shown = URLComponents(url: url, resolvingAgainstBaseURL: false)
        shown?.user = nil
        shown?.password = nil
        shown?.query = nil
        logger.info("processor started", metadata: ["provider.base_url": "\(shown?.string ?? "(unprintable)")", "provider.key": "\(bootstrap.providerKey == nil ? "none" : "set")", "uid": "\(getuid())"])
        try await services.run()
    }
}

struct QueueManagerChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qmgr", abstract: "(started by serve) The queue manager: claims, hands out and commits every tenant's jobs.", shouldDisplay: false
    )

    func run() async throws {
        // It holds database credentials that reach every tenant's jobs and records.
        _ = oneo_set_dumpable(0)
        LogSetup.bootstrap()
        let logger = Logger(label: "oneo.qmgr")
        let link = try await SupervisorLink.connect(role: "qmgr")
        let bootstrap = link.bootstrap
        guard let settings = bootstrap.database else { throw ValidationError("the bootstrap frame carries no database settings") }
        // One connection listens; claims, commits and failures share the rest.
        let database = PostgresClient(configuration: settings.clientConfiguration(maximumConnections: bootstrap.tunables.queue.connections, applicationName: "oneo-qmgr"), backgroundLogger: logger)
        let queue = QueueManagerService(
            settings: .init(
                worker: bootstrap.worker, tunables: bootstrap.tunables, retiredWorkers: bootstrap.retiredWorkers,
                toolTickets: bootstrap.toolTicketKey.map(ToolTicketSigner.init(key:)), startedTools: Set(bootstrap.startedTools)
            ),
            database: database, links: link.processorLinks, tellSupervisor: { link.tell($0) }, logger: logger
        )
        let services = ServiceGroup(configuration: .init(
            services: [.init(service: DatabaseService(database)), .init(service: queue)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        ))
        link.onDrain { _ in Task { await services.triggerGracefulShutdown() } }
        let heartbeats = Task { await link.heartbeats { (queue.activity.held, queue.activity.committed) } }
        defer { heartbeats.cancel() }
        link.ready()
        logger.info("queue manager started", metadata: ["worker": "\(bootstrap.worker)"])
        try await services.run()
    }
}

/// Runs a `PostgresClient` as a service: it stops after the services listed after it.
struct DatabaseService: Service {
    let client: PostgresClient
    init(_ client: PostgresClient) { self.client = client }
    func run() async throws {
        await cancelWhenGracefulShutdown { await self.client.run() }
    }
}
