import ArgumentParser
import CProcess
import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore
import Supervisor
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the supervisor: the API, the tenants' processors, and (embedded mode) PostgreSQL and Redis.",
        discussion: """
            With DATABASE_URL and REDIS_URL unset, a private PostgreSQL and Redis run under --data-dir as \
            supervised children on Unix sockets only, and stop with serve.

            A tenant's processor starts when the tenant has work (or always, for an always-on tenant) and \
            stops after --idle-timeout without any. A child that exits is restarted after 100 ms, doubling \
            to 30 s; more than 5 restarts in 60 s marks it crash-looping and holds it back for 5 minutes. \
            A child silent for --heartbeat-timeout is terminated and restarted. When serve runs as root, \
            tenant N's processor runs as uid --processor-uid-base + N, never as root.

            Operators act on a running serve through <data-dir>/run/oneo-ai.sock: `oneo-ai status`, \
            `oneo-ai tenant restart|stop|start SLUG`.

            SIGTERM or SIGINT: processors stop claiming and finish their jobs (up to --drain-timeout; what \
            is left is released for retry), then every child stops and serve exits 0. A second signal \
            kills every child at once.
            """
    )

    @OptionGroup var instance: InstanceOptions

    @Option(help: "Address the HTTP API listens on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port the HTTP API listens on; 0 lets the kernel pick one, which serve writes to <data-dir>/run/api.port and logs.")
    var port: Int = 8000

    @Option(help: ArgumentHelp(
        "A JSON file of tunables (queue leases and polls, pool sizes, frame caps, heartbeats), e.g. {\"queue\": {\"lease_seconds\": 300}}.",
        discussion: "Each key can also be set as ONEO_<SECTION>_<KEY> (ONEO_QUEUE_LEASE_SECONDS=300), which wins over the file; the flags below win over both. Keys: \(EngineTunables.Key.allCases.map(\.rawValue).joined(separator: ", ")).",
        valueName: "file"
    ))
    var config: String?

    @Option(help: ArgumentHelp(
        "A JSON file of model prices (micro-dollars per million tokens) and parameters, added to or replacing the shipped ones (ONEO_MODELS_FILE).",
        discussion: #"{"models": {"my-model": {"input": 500000, "cached_input": 250000, "output": 1500000, "token_parameter": "max_tokens", "temperature": true}}}"#
    ))
    var models: String?

    @Option(help: "Jobs each tenant's processor runs at once (processors.concurrency; default 16).")
    var processorConcurrency: Int?

    @Option(help: "Seconds without work after which a processor stops, always-on tenants excepted (processors.idle_timeout_ms; default 60).")
    var idleTimeout: Double?

    @Option(help: "Seconds a child may stay silent before it is terminated and restarted (supervision.heartbeat_timeout_ms; default 10).")
    var heartbeatTimeout: Double?

    @Option(help: "Seconds processors may take to finish in-flight jobs at shutdown, and by default on restart (processors.drain_timeout_ms; default 30).")
    var drainTimeout: Double?

    @Option(help: "When run as root: tenant N's processor runs as uid (and the processors' gid) BASE + N.")
    var processorUIDBase: UInt32 = 1_000_000_000

    @Flag(help: "When DATABASE_URL's user may not create roles: run the API and the queue manager with its credentials (no row-level security) instead of refusing to start.")
    var sharedDatabaseCredentials = false

    @Option(help: ArgumentHelp(
        "The search backend of the web_search tool: a SearXNG base URL with its JSON format enabled (http://searxng:8080). Without it, web search is not offered.",
        valueName: "url"
    ))
    var searchURL: String?

    @Flag(help: "Let the image tool reach a tenant's provider on this machine or a private network (a local model server, the bundled simulator). Off, a provider name that resolves there is refused, so a tenant cannot point a tool at internal services.")
    var allowPrivateProviders = false

    @Option(help: "Open HTTP connections the API holds in all; past it a connection's request is answered 503.")
    var httpMaxConnections: Int = 4_096

    @Option(help: "Open HTTP connections from one client address.")
    var httpMaxConnectionsPerAddress: Int = 256

    @Option(help: "Seconds for a request's headers to arrive, from the connection's start or its last response (idle keep-alive connections close after it).")
    var httpHeaderTimeout: Double = 20

    @Option(help: "Seconds for a request's body to arrive after its headers.")
    var httpBodyTimeout: Double = 30

    func validate() throws {
        if let url = self.searchURL {
            guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme?.lowercased() ?? ""), components.host?.isEmpty == false else {
                throw ValidationError("--search-url must be an http(s) URL with a host (got \(url))")
            }
        }
        guard (0...65535).contains(self.port) else { throw ValidationError("--port must be 0...65535 (0: the kernel picks one, written to <data-dir>/run/api.port)") }
        for seconds in [self.idleTimeout, self.heartbeatTimeout, self.drainTimeout].compactMap({ $0 }) where !(0...86_400).contains(seconds) {
            throw ValidationError("--idle-timeout, --heartbeat-timeout and --drain-timeout take 0...86400 seconds (got \(seconds))")
        }
        guard (1...1_000_000).contains(self.httpMaxConnections), (1...self.httpMaxConnections).contains(self.httpMaxConnectionsPerAddress) else {
            throw ValidationError("--http-max-connections must be 1...1000000 and --http-max-connections-per-address 1...that")
        }
        guard (0.1...3600).contains(self.httpHeaderTimeout), (0.1...3600).contains(self.httpBodyTimeout) else {
            throw ValidationError("--http-header-timeout and --http-body-timeout must be 0.1...3600 s")
        }
        guard self.processorUIDBase >= 65536, self.processorUIDBase < UInt32.max - (1 << 24) else {
            throw ValidationError("--processor-uid-base must leave room for 2^24 tenants above it and stay clear of system uids (>= 65536)")
        }
    }

    /// Defaults, the --config file, ONEO_* variables, then these flags; checked as a whole.
    private func tunables() async throws -> EngineTunables {
        var tunables = try await TunablesLoader.load(file: self.config, environment: ProcessInfo.processInfo.environment)
        if let value = self.processorConcurrency { try tunables.set(.processorsConcurrency, value, from: "--processor-concurrency") }
        if let value = self.idleTimeout { try tunables.set(.processorsIdleTimeoutMilliseconds, Int(value * 1000), from: "--idle-timeout") }
        if let value = self.heartbeatTimeout { try tunables.set(.supervisionHeartbeatTimeoutMilliseconds, Int(value * 1000), from: "--heartbeat-timeout") }
        if let value = self.drainTimeout { try tunables.set(.processorsDrainTimeoutMilliseconds, Int(value * 1000), from: "--drain-timeout") }
        if let file = self.models ?? ProcessInfo.processInfo.environment["ONEO_MODELS_FILE"] {
            tunables.models = ModelCatalog.builtIn.merging(try ModelCatalogFile.load(file))
        }
        try tunables.validate()
        return tunables
    }

    func run() async throws {
        LogSetup.bootstrap()
        let logger = Logger(label: "oneo.supervisor")
        // The supervisor holds the master key and, for a moment, each tenant's key: no core
        // dump, and no reading of its memory through /proc or ptrace by its own uid.
        _ = oneo_set_dumpable(0)
        var configuration = Supervisor.Configuration(
            dataDirectory: self.instance.dataDirectory,
            database: try self.instance.databaseSettings(),
            redis: try self.instance.redisSettings(),
            masterKeyFile: self.instance.masterKeyFile,
            host: self.host,
            port: self.port,
            tunables: try await self.tunables()
        )
        configuration.processorUIDBase = self.processorUIDBase
        configuration.allowSharedDatabaseCredentials = self.sharedDatabaseCredentials
        configuration.searchURL = self.searchURL
        configuration.allowPrivateProviders = self.allowPrivateProviders
        configuration.apiArguments = [
            "--max-connections", String(self.httpMaxConnections), "--max-connections-per-address", String(self.httpMaxConnectionsPerAddress),
            "--header-timeout", String(self.httpHeaderTimeout), "--body-timeout", String(self.httpBodyTimeout),
        ]
        // Two descriptors per child (its socket, its output pipe), and more while connections are
        // handed over: the default 1,024 would run out at a few hundred tenants.
        let descriptors = FileDescriptorLimit.raiseToHard()
        logger.info("open-file limit", metadata: ["descriptors": "\(descriptors)"])
        let supervisor = Supervisor(configuration: configuration, logger: logger)
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let watcher = Task {
            var received = 0
            for await signal in signals {
                received += 1
                if received == 1 {
                    logger.notice("signal received; shutting down (send it again to stop at once)", metadata: ["signal": "\(signal)"])
                    supervisor.beginShutdown()
                } else {
                    await supervisor.stopNow()
                    Foundation.exit(1)
                }
            }
        }
        defer { watcher.cancel() }
        try await supervisor.run()
    }
}
