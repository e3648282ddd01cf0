import ArgumentParser
import Foundation
import OneoWire
import OneoStore
import PostgresNIO
import OneoCore

/// A provider key file: its first line, trimmed. Keys come from files, never argv or env.
enum ProviderKeyFile {
    static func read(_ path: String) throws -> ProviderKey {
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read --api-key-file \(path)")
        }
        let line = String(decoding: contents, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let key = line.trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty else { throw ValidationError("--api-key-file \(path) is empty") }
        return ProviderKey(key)
    }
}

/// Stores one setting and, when `restartsProcessor`, restarts the tenant's processor (and only it)
/// if it is running, so that the change takes effect now; a stopped processor reads it when it
/// next starts. Always-on needs no restart: the supervisor reads it within its poll interval.
func applySetting(_ setting: TenantRegistry.Setting, tenant slug: String, instance: InstanceOptions, describe: String, restartsProcessor: Bool = true) async throws {
    // Only a new key is sealed: other settings do not need the master key at all.
    var sealer: KeySealer?
    if case .providerKey = setting { sealer = try KeySealer(masterKeyFile: instance.masterKeyPath) }
    let registrySealer = sealer
    try await withDatabase(instance) { database, logger in
        try await TenantRegistry(database: database, sealer: registrySealer).update(tenant: slug, setting, logger: logger)
    }
    print("tenant \(slug): \(describe)")
    guard restartsProcessor else { return }
    try await restartRunningProcessor(slug, instance: instance)
}

/// Restarts the tenant's processor (and only it) if one is running, so that a changed setting
/// takes effect now; a stopped one reads it when it next starts.
func restartRunningProcessor(_ slug: String, instance: InstanceOptions) async throws {
    let socket = instance.dataDirectory.controlSocket
    guard ControlClient.isServing(path: socket) else {
        print("no supervisor is running for \(instance.dataDir); the processor reads the change when it starts")
        return
    }
    let status = try await ControlClient.send(ControlRequest(command: .status), path: socket, timeout: .seconds(10))
    let processor = status.children?.first { $0.role == "processor" && $0.tenant == slug }
    guard let processor, [.starting, .running, .draining].contains(processor.state) else {
        print("processor:\(slug) is not running; it reads the change when it next starts")
        return
    }
    let reply = try await ControlClient.send(ControlRequest(command: .restart, tenant: slug), path: socket, timeout: .seconds(120))
    if let error = reply.error { throw error }
    print("restarted processor:\(slug) (pid \(reply.children?.first?.pid.map(String.init) ?? "?")); no other tenant was touched")
}

extension TenantCommand {
    struct SetKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-key",
            abstract: "Replace the tenant's provider API key (stored sealed) and restart its processor.",
            discussion: "The key is read from a file, never from argv or the environment."
        )

        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String
        @Option(help: "File holding the provider API key (its first line is used).") var apiKeyFile: String

        func run() async throws {
            let key = try ProviderKeyFile.read(self.apiKeyFile)
            try await applySetting(.providerKey(key), tenant: self.slug, instance: self.instance, describe: "provider key replaced (stored sealed)")
        }
    }

    struct SetBudget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-budget",
            abstract: "Set the tenant's monthly AI budget in cents (stored as integer micro-dollars); --unlimited removes it."
        )

        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String
        @Option(help: "Monthly budget in US cents, e.g. 5000 for $50.00.") var monthlyCents: Int64?
        @Flag(help: "No monthly budget.") var unlimited = false

        func validate() throws {
            guard (self.monthlyCents == nil) != !self.unlimited else { throw ValidationError("give --monthly-cents N or --unlimited") }
            if let cents = self.monthlyCents, !(0...Int64(1) << 40).contains(cents) { throw ValidationError("--monthly-cents must be 0 ... 2^40") }
        }

        func run() async throws {
            let budget = self.monthlyCents.map { Microdollars($0 * 10_000) }
            let describe = budget.map { "monthly budget set to \($0.rawValue) micro-dollars ($\(String(format: "%.2f", Double($0.rawValue) / 1_000_000)))" } ?? "monthly budget removed"
            // Every reservation reads the tenant's budget live: no processor needs a restart.
            try await applySetting(.monthlyBudget(budget), tenant: self.slug, instance: self.instance, describe: describe, restartsProcessor: false)
        }
    }

    struct SetTimeZone: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-time-zone",
            abstract: "Set the time zone whose calendar months the tenant's budgets run by (UTC by default).",
            discussion: "A name PostgreSQL knows (pg_timezone_names), e.g. Europe/Oslo or America/New_York."
        )

        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String
        @Argument(help: "An IANA time zone name, e.g. Europe/Oslo.") var zone: String

        func validate() throws {
            guard (1...64).contains(self.zone.utf8.count), self.zone.allSatisfy({ $0.isLetter || $0.isNumber || "/_+-".contains($0) }) else {
                throw ValidationError("the time zone must be a name like Europe/Oslo")
            }
        }

        func run() async throws {
            try await applySetting(.timeZone(self.zone), tenant: self.slug, instance: self.instance, describe: "budget months run by \(self.zone)", restartsProcessor: false)
        }
    }

    struct SetModel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-model", abstract: "Set the tenant's default model and restart its processor.")

        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String
        @Argument(help: "Model name, e.g. gpt-4o-mini.") var model: String

        func validate() throws {
            guard (1...200).contains(self.model.count), !self.model.contains(where: \.isWhitespace) else {
                throw ValidationError("the model name must be 1-200 characters without spaces")
            }
        }

        func run() async throws {
            try await applySetting(.defaultModel(self.model), tenant: self.slug, instance: self.instance, describe: "default model set to \(self.model)")
            if ModelCatalog.builtIn.model(self.model) == nil {
                print("warning: model '\(self.model)' has no shipped price: the tenant's AI fields without a model of their own fail model_unpriced unless serve runs with --models naming it")
            }
        }
    }

    struct SetBaseURL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-base-url", abstract: "Set the tenant's OpenAI-compatible base URL (including /v1) and restart its processor.")

        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String
        @Argument(help: "e.g. https://api.openai.com/v1") var baseURL: String

        func validate() throws {
            try BaseURL.check(self.baseURL, option: "the base URL")
        }

        func run() async throws {
            try await applySetting(.baseURL(self.baseURL), tenant: self.slug, instance: self.instance, describe: "provider base URL set to \(self.baseURL)")
        }
    }

    struct SetKeySource: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-key-source",
            abstract: "Choose whose provider key the tenant's processor uses: its own, or the operator's fallback key; restarts its processor.",
            discussion: "Nothing falls back by itself: a tenant uses the operator's key only after this says so, and its spend is its own either way."
        )

        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String
        @Argument(help: "own or operator.") var source: String

        func validate() throws {
            guard TenantRegistry.KeySource(rawValue: self.source) != nil else { throw ValidationError("the key source must be own or operator") }
        }

        func run() async throws {
            let source = TenantRegistry.KeySource(rawValue: self.source) ?? .own
            try await applySetting(.keySource(source), tenant: self.slug, instance: self.instance, describe: "provider key source set to \(source.rawValue)")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a tenant's settings: status, base URL, default model, whose key it uses (never the key), budget."
        )

        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String

        func run() async throws {
            let slug = self.slug
            let (tenant, budgets) = try await withDatabase(self.instance) { database, logger in
                let tenant = try await TenantRegistry(database: database, sealer: nil).overview(tenant: slug, logger: logger)
                let budgets = try await database.withConnection { connection in
                    try await BudgetLedger.current(tenant: tenant.id, on: connection, logger: logger)
                }
                return (tenant, budgets)
            }
            let key = switch tenant.keySource {
            case .own: tenant.ownKeySet ? "its own (set)" : "its own (NOT SET: calls go without a key)"
            case .operator:
                tenant.operatorKeySet
                    ? "the operator's fallback key, sent to \(PlainText.bounded(tenant.operatorBaseURL ?? "?", 300)) (oneo-ai operator set-key)"
                    : "the operator's fallback key (NOT SET: its processor does not start)"
            }
            let rows: [(String, String)] = [
                ("tenant", "\(tenant.slug) (id \(tenant.id)) \(PlainText.bounded(tenant.name, 200))"),
                ("status", tenant.status + (tenant.alwaysOn ? ", always on" : "")),
                ("base url", PlainText.bounded(tenant.baseURL, 300)),
                ("default model", PlainText.bounded(tenant.defaultModel, 100)),
                ("provider key", key),
                ("monthly budget", tenant.monthlyBudget.map { "\($0.rawValue) micro-dollars (\($0))" } ?? "none"),
                ("tools", tenant.toolsEnabled ? "on (fields with enable_tools may call their allowed_tools)" : "off (no field of this tenant calls a tool)"),
                ("sensitive fields", tenant.sensitiveFields.isEmpty ? "(built-in list only)" : tenant.sensitiveFields.map { PlainText.bounded($0, 64) }.joined(separator: ", ")),
            ]
            for (label, value) in rows { print(label.padding(toLength: 17, withPad: " ", startingAt: 0) + value) }
            print("budgets          months in \(PlainText.bounded(budgets.timeZone, 64))" + (budgets.periods.isEmpty ? "; none reserved against this month" : ""))
            for period in budgets.periods {
                let name = period.scope == "tenant" ? "tenant (monthly)" : "field \(PlainText.bounded(period.fieldName ?? "", 64)) (pipeline \(period.pipeline?.rawValue ?? 0))"
                print("  \(name), from \(period.periodStart): limit \(period.limit), spent \(period.spent), reserved \(period.reserved), remaining \(period.remaining)")
            }
        }
    }

    /// A tenant's on/off setting: its slug, `on` or `off`, and the instance.
    struct TenantSwitch: ParsableArguments {
        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String
        @Argument(help: "on or off.") var mode: String

        func validate() throws {
            guard ["on", "off"].contains(self.mode) else { throw ValidationError("say on or off") }
        }

        var on: Bool { self.mode == "on" }

        func apply(_ setting: TenantRegistry.Setting, name: String, whenOn: String, whenOff: String) async throws {
            let describe = "\(name) \(self.mode); " + (self.on ? whenOn : whenOff)
            try await applySetting(setting, tenant: self.slug, instance: self.instance, describe: describe, restartsProcessor: false)
        }
    }

    struct SetAlwaysOn: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-always-on",
            abstract: "Keep the tenant's processor running even without work (on), or start it on demand (off, the default)."
        )

        @OptionGroup var target: TenantSwitch

        func run() async throws {
            try await self.target.apply(
                .alwaysOn(self.target.on), name: "always-on",
                whenOn: "a running serve starts its processor within seconds", whenOff: "its processor now stops when idle"
            )
        }
    }

    struct SetTools: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-tools",
            abstract: "Let the tenant's fields call tools (on, the default) or not at all (off), from each job's next claim."
        )

        @OptionGroup var target: TenantSwitch

        func run() async throws {
            try await self.target.apply(
                .tools(self.target.on), name: "tools",
                whenOn: "fields with enable_tools may call their allowed_tools", whenOff: "no job of this tenant is granted a tool from its next claim"
            )
        }
    }
}
