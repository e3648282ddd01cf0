public import Hummingbird
public import Logging
public import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
public import PostgresNIO

/// The HTTP API process's application: routes, authentication, and the Postgres pool it uses.
public enum APIServer {
    public static func application(
        database: PostgresClient,
        host: String,
        port: Int,
        connections: ConnectionSettings = ConnectionSettings(),
        tunables: EngineTunables = EngineTunables(),
        health: any ProcessorHealthSource = NoProcessorHealth(),
        redis: RedisSettings? = nil,
        logger: Logger,
        onListening: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: LogRequestsMiddleware(.debug))
        router.add(middleware: ErrorShapeMiddleware())
        router.get("healthz") { _, _ in
            try await database.query("SELECT 1", logger: logger)
            return "ok\n"
        }
        let pipelines = PipelineStore(database: database)
        let api = router.group("api/v1").add(middleware: TokenAuthenticator(database: database))
        PipelineRoutes(pipelines: pipelines, models: tunables.models).add(to: api)
        let attempts = tunables.queue.maxRetries + 1
        RecordRoutes(database: database, pipelines: pipelines, maxAttempts: attempts).add(to: api)
        GenerateRoutes(database: database, pipelines: pipelines, maxAttempts: attempts).add(to: api)
        BulkGenerateRoutes(database: database, pipelines: pipelines, models: tunables.models, maxAttempts: attempts).add(to: api)
        JobRoutes(database: database, pipelines: pipelines).add(to: api)
        JobActionRoutes(database: database, pipelines: pipelines, attempts: attempts).add(to: api)
        JobHealthRoutes(database: database, health: health, redis: redis).add(to: api)
        AnalyticsRoutes(database: database).add(to: api)
        BudgetRoutes(gate: TenantQueryGate(database: database, perTenant: 2)).add(to: api)
        PreviewRoutes(database: database, pipelines: pipelines, models: tunables.models).add(to: api)
        WorkflowRoutes(database: database, models: tunables.models, maxAttempts: attempts).add(to: api)
        FileRoutes(database: database).add(to: api)
        // Every connection gets its own guard over the shared counts: caps, head and body deadlines.
        let counts = ConnectionCounts(settings: connections)
        return Application(
            router: router,
            server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionGuard(counts: counts)])),
            configuration: .init(address: .hostname(host, port: port), serverName: "oneo-ai"),
            services: [database],
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}
