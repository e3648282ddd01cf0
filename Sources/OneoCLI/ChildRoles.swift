import API
import ArgumentParser
import Foundation
import Logging
import NIOPosix
import OneoCore
import PostgresNIO
import Processor
import ServiceLifecycle
import UnixSignals

/// What a child does first: take its bootstrap frame from fd 3, then read the supervisor's
/// frames on a thread of its own, exiting as soon as the socket closes (the supervisor is gone:
/// no orphans) or says something outside the fixed message table.
enum ChildStart {
    static func bootstrap(role: String) async throws -> (ChildBootstrap, wakeups: AsyncStream<Void>) {
        let channel = FrameSocket(descriptor: FrameSocket.childDescriptor)
        let bootstrap = try await NIOThreadPool.singleton.runIfActive {
            try channel.receive(ChildBootstrap.self)
        }
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let reader = Thread {
            while true {
                let message: SupervisorMessage?
                do {
                    message = SupervisorMessage(try channel.receive(Frame.Typed.self))
                } catch {
                    FileHandle.standardError.write(Data("oneo-ai \(role): supervisor gone (\(error)); exiting\n".utf8))
                    exit(0)
                }
                switch message {
                case .wake: wake.yield()
                case nil:
                    FileHandle.standardError.write(Data("oneo-ai \(role): unknown frame from the supervisor; exiting\n".utf8))
                    exit(70)
                }
            }
        }
        reader.start()
        return (bootstrap, wakeups)
    }
}

struct APIChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api", abstract: "(started by serve) The HTTP API process.", shouldDisplay: false
    )

    @Option var host: String = "127.0.0.1"
    @Option var port: Int = 8000

    func run() async throws {
        LogSetup.bootstrap()
        let logger = Logger(label: "oneo.api")
        let (bootstrap, _) = try await ChildStart.bootstrap(role: "api")
        let database = PostgresClient(configuration: bootstrap.database.clientConfiguration(maximumConnections: 16), backgroundLogger: logger)
        let application = APIServer.application(database: database, host: self.host, port: self.port, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: application)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

struct ProcessorChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "processor", abstract: "(started by serve) One tenant's job processor.", shouldDisplay: false
    )

    @Option(help: "The tenant's slug; must match the tenant of the bootstrap frame.")
    var tenant: String

    @Option var concurrency: Int = 16

    func run() async throws {
        LogSetup.bootstrap()
        var logger = Logger(label: "oneo.processor")
        logger[metadataKey: "tenant"] = "\(self.tenant)"
        let (bootstrap, wakeups) = try await ChildStart.bootstrap(role: "processor \(self.tenant)")
        guard let tenantID = bootstrap.tenant else { throw ValidationError("bootstrap frame names no tenant") }
        // Claims and group commits batch every job in flight, so two connections serve a tenant and
        // a hundred tenants cost two hundred, not one per job. No connection is held during a
        // provider call, and none listens: the supervisor relays wake-ups over the socket.
        let database = PostgresClient(configuration: bootstrap.database.clientConfiguration(maximumConnections: 2), backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            let rows = try await database.query(
                "SELECT slug, name, provider_base_url FROM tenants WHERE id = \(tenantID)", logger: logger
            )
            var found: (String, String, String)?
            for try await row in rows.decode((String, String, String).self) { found = row }
            guard let (slug, name, baseURL) = found, slug == self.tenant else {
                throw ValidationError("tenant \(tenantID) is not '\(self.tenant)'")
            }
            let processor = ProcessorService(
                settings: .init(tenant: tenantID, tenantName: name, baseURL: baseURL, key: bootstrap.providerKey, concurrency: self.concurrency),
                database: database,
                wakeups: wakeups,
                logger: logger
            )
            logger.info("processor started", metadata: ["provider.base_url": "\(baseURL)", "provider.key": "\(bootstrap.providerKey == nil ? "none" : "set")"])
            let services = ServiceGroup(configuration: .init(services: [.init(service: processor)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await services.run()
            group.cancelAll()
        }
    }
}
