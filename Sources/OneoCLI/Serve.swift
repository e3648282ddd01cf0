import ArgumentParser
import Logging
import OneoCore
import ServiceLifecycle
import UnixSignals
import Supervisor

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the supervisor: the API, one processor per active tenant, and (embedded mode) PostgreSQL and Redis.",
        discussion: """
            With DATABASE_URL and REDIS_URL unset, a private PostgreSQL and Redis run under --data-dir as \
            supervised children on Unix sockets only, and stop with serve. SIGTERM or SIGINT drains the \
            processors' in-flight jobs, stops every child and exits 0.
            """
    )

    @OptionGroup var instance: InstanceOptions

    @Option(help: "Address the HTTP API listens on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port the HTTP API listens on.")
    var port: Int = 8000

    @Option(help: "Jobs each tenant's processor runs at once.")
    var processorConcurrency: Int = 16

    func validate() throws {
        guard (1...65535).contains(self.port) else { throw ValidationError("--port must be 1...65535") }
        guard (1...1024).contains(self.processorConcurrency) else { throw ValidationError("--processor-concurrency must be 1...1024") }
    }

    func run() async throws {
        LogSetup.bootstrap()
        let logger = Logger(label: "oneo.supervisor")
        let supervisor = Supervisor(
            configuration: .init(
                dataDirectory: self.instance.dataDirectory,
                database: try self.instance.databaseSettings(),
                redis: try self.instance.redisSettings(),
                masterKeyFile: self.instance.masterKeyFile,
                host: self.host,
                port: self.port,
                processorConcurrency: self.processorConcurrency
            ),
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: SupervisorService(supervisor: supervisor))], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}

/// Runs the supervisor as the service group's one service.
struct SupervisorService: Service {
    let supervisor: Supervisor
    func run() async throws { try await self.supervisor.run() }
}
