import ArgumentParser

/// `oneo-ai`: the supervisor (`serve`), the operator's commands, and the hidden child roles the
/// supervisor starts (`api`, `processor`).
@main
struct OneoAI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oneo-ai",
        abstract: "Fills AI-generated fields on CRM records, per tenant, within budget.",
        discussion: """
            Start with `oneo-ai serve`: with no DATABASE_URL / REDIS_URL it runs a private PostgreSQL \
            and Redis under --data-dir (default .oneo). Then add a tenant and an API token from another \
            shell with the same --data-dir.
            """,
        subcommands: [Serve.self, Status.self, Bench.self, Migrate.self, TenantCommand.self, TokenCommand.self, JobsCommand.self, GenerateCommand.self, SandboxCommand.self, OperatorKeyCommand.self, RedisCommand.self, APIChild.self, QueueManagerChild.self, ProcessorChild.self]
    )
}
