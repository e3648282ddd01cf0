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

/// What a child does first: take its bootstrap frame from fd 3, and arrange to exit as soon as the
/// supervisor's end of that socket closes (the supervisor is gone; no orphans).
enum ChildStart {
    static func bootstrap(role: String) async throws -> ChildBootstrap {
        let channel = FrameSocket(descriptor: FrameSocket.childDescriptor)
        let bootstrap = try await NIOThreadPool.singleton.runIfActive {
            try channel.receive(ChildBootstrap.self)
        }
        let watcher = Thread {
            channel.waitUntilClosed()
            FileHandle.standardError.write(Data("oneo-ai \(role): supervisor gone (socket closed); exiting\n".utf8))
            exit(0)
        }
        watcher.start()
        return bootstrap
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
        let bootstrap = try await ChildStart.bootstrap(role: "api")
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
        let bootstrap = try await ChildStart.bootstrap(role: "processor \(self.tenant)")
        guard let tenantID = bootstrap.tenant else { throw ValidationError("bootstrap frame names no tenant") }
        // Enough for claims, context reads and commits: a job holds a connection only between
        // provider calls, never during one.
        let database = PostgresClient(configuration: bootstrap.database.clientConfiguration(maximumConnections: 5), backgroundLogger: logger)
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
                logger: logger
            )
            logger.info("processor started", metadata: ["provider.base_url": "\(baseURL)", "provider.key": "\(bootstrap.providerKey == nil ? "none" : "set")"])
            let services = ServiceGroup(configuration: .init(services: [.init(service: processor)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await services.run()
            group.cancelAll()
        }
    }
}
