import ArgumentParser
import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore
import PostgresNIO

/// Runs `body` with a client on the instance's database, closing it afterwards.
func withDatabase<Result: Sendable>(
    _ instance: InstanceOptions,
    _ body: @Sendable (PostgresClient, Logger) async throws -> Result
) async throws -> Result {
    LogSetup.bootstrap()
    let logger = Logger(label: "oneo.cli")
    let client = PostgresClient(configuration: try instance.reachableDatabase().clientConfiguration(maximumConnections: 2, applicationName: "oneo-cli"), backgroundLogger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        try await Migrator(client: client, logger: logger).migrate()
        return try await body(client, logger)
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending schema migrations and the API's and queue manager's database roles (serve also does both at start).",
        discussion: "Where the database user may not create roles, the roles are left alone and the statements an administrator runs once are printed (also with --print-roles)."
    )

    @OptionGroup var instance: InstanceOptions

    @Flag(help: "Print the statements that create the roles and their grants, and change nothing else.")
    var printRoles = false

    func run() async throws {
        let database = try self.instance.reachableDatabase().database
        let roles = RoleSetup.roles(forDatabase: database)
        if self.printRoles {
            print(RoleSetup.statementsForAdministrator(roles))
            return
        }
        let outcome = try await withDatabase(self.instance) { client, logger in
            try await RoleSetup.apply(roles, passwords: nil, client: client, logger: logger)
        }
        print("schema is up to date (version \(Migrator.migrations.last?.version ?? 0))")
        switch outcome {
        case .applied:
            print("roles \(roles.api) (API, under row-level security) and \(roles.queueManager) (queue manager) are in place; serve gives them passwords at start")
        case .notPermitted:
            print("this database user may not create roles; an administrator runs, once:\n")
            print(RoleSetup.statementsForAdministrator(roles))
        }
    }
}

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tenant", abstract: "Manage tenants.", subcommands: [
        Add.self, Show.self, SetKey.self, SetKeySource.self, SetBudget.self, SetTimeZone.self, SetModel.self, SetBaseURL.self, SetAlwaysOn.self, SetTools.self,
        SetSensitiveFields.self, Restart.self, Stop.self, Start.self,
    ])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a tenant; a running serve starts its processor within seconds.",
            discussion: "The provider key is read from a file (never from argv or env) and stored sealed with the master key."
        )

        @OptionGroup var instance: InstanceOptions

        @Argument(help: "Lower-case identifier: letters, digits, '-' and '_'.")
        var slug: String

        @Option(help: "Display name.")
        var name: String

        @Option(help: "File holding the tenant's provider API key (its first line is used).")
        var apiKeyFile: String?

        @Option(help: "OpenAI-compatible API base URL, including /v1.")
        var baseURL: String = "https://api.openai.com/v1"

        @Option(help: "Default model for the tenant's AI fields.")
        var model: String = "gpt-4o-mini"

        @Flag(help: "Add the tenant suspended: its jobs queue, but no processor runs them until it is activated.")
        var suspended: Bool = false

        func validate() throws {
            guard self.slug.range(of: #"^[a-z][a-z0-9_-]{0,62}$"#, options: .regularExpression) != nil else {
                throw ValidationError("slug must start with a letter and hold only a-z, 0-9, '-' and '_' (at most 63)")
            }
            try BaseURL.check(self.baseURL, option: "--base-url")
        }

        func run() async throws {
            let key = try self.apiKeyFile.map(ProviderKeyFile.read)
            let sealer = try KeySealer(masterKeyFile: self.instance.masterKeyPath)
            let registration = TenantRegistry.Registration(slug: self.slug, name: self.name, baseURL: self.baseURL, model: self.model, key: key, active: !self.suspended)
            let tenant = try await withDatabase(self.instance) { database, logger in
                try await TenantRegistry(database: database, sealer: sealer).add(registration, logger: logger)
            }
            let slug = self.slug
            print("tenant \(slug) added (id \(tenant)); provider key \(key == nil ? "not set" : "stored sealed")")
            if ModelCatalog.builtIn.model(self.model) == nil {
                print("warning: model '\(self.model)' has no shipped price: AI fields that use it are refused unless serve runs with --models naming it")
            }
        }
    }
}

extension TenantCommand {
    struct SetSensitiveFields: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-sensitive-fields",
            abstract: "Set the tenant's own sensitive field names, withheld from every prompt on top of the built-in list.",
            discussion: "Names match fields, labels and nested keys as whole words (salary matches base_salary). An empty --names clears the tenant's additions; the built-in list always applies."
        )

        @OptionGroup var instance: InstanceOptions

        @Argument(help: "The tenant's slug.")
        var slug: String

        @Option(help: "Comma-separated names, e.g. salary,medical_history.")
        var names: String

        func run() async throws {
            let names = self.names.split(separator: ",").map(String.init)
            let slug = self.slug
            try await withDatabase(self.instance) { database, logger in
                try await TenantRegistry(database: database, sealer: nil).setSensitiveNames(tenant: slug, names, logger: logger)
            }
            print("tenant \(slug): sensitive field names set to [\(names.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: ", "))] on top of the built-in list")
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "token", abstract: "Manage API tokens.", subcommands: [Create.self, List.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a tenant's API tokens: id, name, prefix, permissions, created, revoked. Never the token itself."
        )

        @OptionGroup var instance: InstanceOptions

        @Option(help: "The tenant's slug.")
        var tenant: String

        func run() async throws {
            let tenant = self.tenant
            let tokens = try await withDatabase(self.instance) { database, logger in
                try await TenantRegistry(database: database, sealer: nil).tokens(tenant: tenant, logger: logger)
            }
            guard !tokens.isEmpty else {
                print("tenant \(tenant) has no API tokens; create one with `oneo-ai token create --tenant \(tenant)`")
                return
            }
            let dates = ISO8601DateFormatter()
            print("id\tname\tprefix\tpermissions\tcreated\trevoked")
            for token in tokens {
                print("\(token.id)\t\(token.name)\t\(token.prefix)…\t\(token.permissions.joined(separator: ","))\t\(dates.string(from: token.createdAt))\t\(token.revokedAt.map(dates.string(from:)) ?? "-")")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke one of a tenant's API tokens by its id (see `token list`); the API refuses it within 5 seconds."
        )

        @OptionGroup var instance: InstanceOptions

        @Option(help: "The tenant's slug.")
        var tenant: String

        @Option(help: "The token's id, as `token list` shows it.")
        var id: Int64

        func run() async throws {
            let (tenant, id) = (self.tenant, self.id)
            try await withDatabase(self.instance) { database, logger in
                try await TenantRegistry(database: database, sealer: nil).revokeToken(tenant: tenant, id: id, logger: logger)
            }
            print("token \(id) of tenant \(tenant) revoked")
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an API token for a tenant; the token is printed once, as the last line.",
            discussion: "Permissions: read (list and read), create (create and change pipelines, fields, records; retry, cancel and generate jobs)."
        )

        @OptionGroup var instance: InstanceOptions

        @Option(help: "The tenant's slug.")
        var tenant: String

        @Option(help: "Comma-separated permissions: read, create.")
        var permissions: String = "read"

        @Option(help: "A name for the token; jobs it triggers record it as their user.")
        var name: String = "api"

        func run() async throws {
            let requested = self.permissions.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let unknown = requested.filter { APIToken.Permission(rawValue: $0) == nil }
            guard unknown.isEmpty, !requested.isEmpty else {
                throw ValidationError("--permissions takes a comma-separated list of: \(APIToken.Permission.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let permissions = requested.compactMap(APIToken.Permission.init(rawValue:))
            let (tenant, name) = (self.tenant, self.name)
            let token = try await withDatabase(self.instance) { database, logger in
                try await TenantRegistry(database: database, sealer: nil).createToken(tenant: tenant, name: name, permissions: permissions, logger: logger)
            }
            print("token for tenant \(tenant) with permissions \(requested.joined(separator: ",")) (shown once):")
            print(token)
        }
    }
}
