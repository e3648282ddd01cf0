import API
import ArgumentParser
import Foundation
import Logging
import OneoWire
import OneoStore
import PostgresNIO

/// `oneo-ai generate`: bulk generation from the operator's shell, the same run as the API's
/// `…/fields/{slug}/generate/`: the estimate first, the run on `--yes`, then a progress bar
/// until every job has ended.
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Fill one AI field on many records of a tenant's pipeline, with a cost estimate first and a progress bar.",
        discussion: """
            Without --yes it prints how many records match and the worst case of what filling them can \
            cost (every prompt rendered and bounded as its budget reservation will be), and queues nothing. \
            With --yes it queues them and shows their progress until all have ended; each call is reserved \
            against the budgets as it runs, so a budget stops the run where it runs out (those jobs fail \
            budget_exceeded and can be retried after the budget is raised). Ctrl-C stops watching, not the jobs.

            Exit status: 0 when every job completed, 3 when some failed or were cancelled.

            Example: oneo-ai generate --tenant acme leads pitch --empty --where company=Initech --yes
            """
    )

    @OptionGroup var instance: InstanceOptions
    @Option(help: "The tenant (its slug).") var tenant: String
    @Argument(help: "The pipeline (its slug or id).") var pipeline: String
    @Argument(help: "The AI field to fill (its slug).") var field: String
    @Flag(help: "Only records whose field is empty.") var empty = false
    @Option(
        name: .customLong("where"),
        help: "Only records whose input field equals a value: FIELD=VALUE, repeatable. VALUE is read as JSON when it is a number, true, false, null or a quoted string, else as text."
    )
    var conditions: [String] = []
    @Flag(help: "Queue the jobs (without it, only the estimate is printed).") var yes = false
    @Flag(help: "Queue and return at once, without watching the progress.") var noWait = false
    @Option(help: "An operator's model catalog file, as given to serve --models (default: ONEO_MODELS_FILE, else the built-in prices).")
    var models: String?

    func validate() throws {
        _ = try Self.parse(self.conditions)
        if self.noWait, !self.yes { throw ValidationError("--no-wait only applies with --yes") }
    }

    /// `FIELD=VALUE` pairs as the run's `where`.
    static func parse(_ conditions: [String]) throws -> [String: JSONValue] {
        var parsed: [String: JSONValue] = [:]
        for condition in conditions {
            guard let equals = condition.firstIndex(of: "="), equals != condition.startIndex else {
                throw ValidationError("--where takes FIELD=VALUE; got '\(PlainText.bounded(condition, 80))'")
            }
            let text = String(condition[condition.index(after: equals)...])
            let value: JSONValue
            switch (try? JSONValue.parse(Array(text.utf8))) {
            case let scalar? where scalar.arrayValue == nil && scalar.objectValue == nil: value = scalar
            default: value = .string(text)
            }
            parsed[String(condition[..<equals])] = value
        }
        return parsed
    }

    func run() async throws {
        let catalog = try (self.models ?? ProcessInfo.processInfo.environment["ONEO_MODELS_FILE"]).map {
            ModelCatalog.builtIn.merging(try ModelCatalogFile.load($0))
        } ?? ModelCatalog.builtIn
        let tunables = try await TunablesLoader.load(file: nil, environment: ProcessInfo.processInfo.environment)
        let selection = BulkGeneration.Selection(pipeline: self.pipeline, field: self.field, onlyEmpty: self.empty, conditions: try Self.parse(self.conditions))
        let (tenantSlug, confirm, watch) = (self.tenant, self.yes, !self.noWait)
        let outcome = try await withDatabase(self.instance) { database, logger -> Int32 in
            let requester = try await Self.requester(tenantSlug, database, logger)
            let bulk = BulkGeneration(database: database, models: catalog, maxAttempts: tunables.queue.maxRetries + 1)
            let plan: BulkGeneration.Plan
            do {
                plan = try await bulk.plan(selection, by: requester, logger: logger)
            } catch let error as APIError {
                throw ValidationError(error.message)
            }
            print("\(plan.records) record\(plan.records == 1 ? "" : "s") match; model \(plan.model); worst case \(Self.dollars(plan.worstCase)) (\(plan.worstCase.rawValue) µ$)")
            guard confirm else {
                print("nothing queued: add --yes to queue \(plan.records == 1 ? "it" : "them")")
                return 0
            }
            let queued = try await bulk.queue(plan, logger: logger)
            print("queued \(queued) job\(queued == 1 ? "" : "s")")
            guard watch, queued > 0 else { return 0 }
            let progress = try await Self.watch(bulk, plan: plan, tenant: requester.tenant, expected: queued, logger: logger)
            print("completed \(progress.completed), failed \(progress.failed), cancelled \(progress.cancelled)")
            if progress.failed + progress.cancelled > 0 {
                print("see them with: oneo-ai jobs list --tenant \(tenantSlug) --status failed")
                return 3
            }
            return 0
        }
        if outcome != 0 { throw ExitCode(outcome) }
    }

    /// Polls the run's jobs until none is pending or processing, drawing a bar on a terminal
    /// (a line every few seconds otherwise).
    static func watch(_ bulk: BulkGeneration, plan: BulkGeneration.Plan, tenant: TenantID, expected: Int, logger: Logger) async throws -> BulkGeneration.Progress {
        let terminal = isatty(STDERR_FILENO) == 1
        var lastLine = ContinuousClock.now - .seconds(60)
        var lastShown: BulkGeneration.Progress?
        while true {
            let progress = try await bulk.progress(tenant: tenant, pipeline: plan.pipeline, field: plan.field, since: plan.since, logger: logger)
            let total = max(progress.total, expected)
            let done = progress.pending + progress.processing == 0
            if terminal {
                FileHandle.standardError.write(Data(("\r" + Self.bar(progress, total: total) + (done ? "\n" : "")).utf8))
            } else if progress != lastShown, done || ContinuousClock.now - lastLine >= .seconds(5) {
                FileHandle.standardError.write(Data((Self.bar(progress, total: total) + "\n").utf8))
                lastLine = .now
                lastShown = progress
            }
            if done { return progress }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// `[##########··········]  120/500  completed 118  failed 2  processing 3`
    static func bar(_ progress: BulkGeneration.Progress, total: Int, width: Int = 30) -> String {
        let filled = total > 0 ? min(width, progress.finished * width / total) : width
        return "[" + String(repeating: "#", count: filled) + String(repeating: "·", count: width - filled) + "] "
            + "\(progress.finished)/\(total)  completed \(progress.completed)  failed \(progress.failed)  processing \(progress.processing)  pending \(progress.pending)"
    }

    static func dollars(_ amount: Microdollars) -> String {
        let cents = (amount.rawValue + 9_999) / 10_000
        return "$\(cents / 100).\(String(format: "%02d", cents % 100))"
    }

    static func requester(_ slug: String, _ database: PostgresClient, _ logger: Logger) async throws -> BulkGeneration.Requester {
        let rows = try await database.query("SELECT id, name, default_model, sensitive_fields FROM tenants WHERE slug = \(slug)", logger: logger)
        for try await (id, name, model, sensitive) in rows.decode((TenantID, String, String, [String]).self) {
            return BulkGeneration.Requester(tenant: id, tenantName: name, defaultModel: model, sensitiveNames: sensitive, user: "operator")
        }
        throw ValidationError("no tenant '\(slug)'")
    }
}
