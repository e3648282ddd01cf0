import ArgumentParser
import Foundation
import Logging
import OneoWire
import OneoStore
import PostgresNIO

/// `oneo-ai jobs …`: the operator's view of the queue across tenants, and the reference's
/// `cleanup_old_jobs` and `retry_failed_jobs`, on the instance's database (as its owner).
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "List, show, cancel, retry and clean up AI jobs.",
        subcommands: [List.self, Show.self, Cancel.self, Retry.self, Cleanup.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first, as a table or JSON.")

        @OptionGroup var instance: InstanceOptions
        @Option(help: "Only this tenant's jobs (its slug).") var tenant: String?
        @Option(help: "Only jobs in this state: pending, processing, completed, failed, cancelled.") var status: String?
        @Option(help: "Only jobs that ended with this error code.") var errorCode: String?
        @Option(help: "At most this many rows (1...10000).") var limit: Int = 50
        @Flag(help: "One JSON object per line instead of a table.") var json = false

        func validate() throws {
            if let status, JobStatus(rawValue: status) == nil { throw ValidationError("--status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))") }
            guard (1...10_000).contains(self.limit) else { throw ValidationError("--limit must be 1...10000") }
        }

        func run() async throws {
            let (tenant, status, code, limit) = (self.tenant, self.status, self.errorCode, self.limit)
            let rows = try await withDatabase(self.instance) { database, logger -> [JobRow] in
                let tenantID = try await JobsCommand.tenantID(tenant, database, logger)
                return try await JobRow.query(database, logger, """
                    SELECT j.id, t.slug, j.pipeline_id, j.record_id, j.field_name, j.status, j.attempt, j.max_attempts, j.error_code,
                           j.error_message, j.cost_micros, j.created_at, j.completed_at
                    FROM ai_jobs j JOIN tenants t ON t.id = j.tenant_id
                    WHERE (\(tenantID)::bigint IS NULL OR j.tenant_id = \(tenantID))
                      AND (\(status)::text IS NULL OR j.status = \(status))
                      AND (\(code)::text IS NULL OR j.error_code = \(code))
                    ORDER BY j.id DESC LIMIT \(limit)
                    """)
            }
            if self.json {
                for row in rows { print(try row.jsonLine()) }
                return
            }
            guard !rows.isEmpty else { return print("no jobs match") }
            printTable(
                ["id", "tenant", "record", "field", "status", "attempt", "error", "cost µ$", "created"],
                rows.map { [
                    "\($0.id)", $0.tenant, $0.recordText, $0.field, $0.status, "\($0.attempt)/\($0.maxAttempts)",
                    $0.errorCode ?? "-", "\($0.costMicros)", JobRow.dates.string(from: $0.createdAt),
                ] }
            )
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one job and each of its attempts.")

        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The job's id.") var id: Int64
        @Flag(help: "JSON instead of text.") var json = false

        func run() async throws {
            let id = self.id
            let (job, attempts) = try await withDatabase(self.instance) { database, logger -> (JobRow?, [[String]]) in
                let rows = try await JobRow.query(database, logger, """
                    SELECT j.id, t.slug, j.pipeline_id, j.record_id, j.field_name, j.status, j.attempt, j.max_attempts, j.error_code,
                           j.error_message, j.cost_micros, j.created_at, j.completed_at
                    FROM ai_jobs j JOIN tenants t ON t.id = j.tenant_id WHERE j.id = \(id)
                    """)
                var attempts: [[String]] = []
                let history = try await database.query(
                    """
                    SELECT attempt, outcome, error_code, error_message, provider_retries, ended_at FROM ai_job_attempts
                    WHERE job_id = \(id) ORDER BY attempt
                    """,
                    logger: logger
                )
                for try await (attempt, outcome, code, message, retries, ended) in history.decode((Int, String, String, String, Int, Date).self) {
                    attempts.append(["\(attempt)", outcome, code, "\(retries)", JobRow.dates.string(from: ended), message])
                }
                return (rows.first, attempts)
            }
            guard let job else { throw ValidationError("no job \(id)") }
            if self.json {
                print(try job.jsonLine(attempts: attempts))
                return
            }
            print("job \(job.id)  tenant \(job.tenant)  record \(job.recordText)  field \(PlainText.bounded(job.field, 200))")
            print("status \(job.status)  attempt \(job.attempt) of \(job.maxAttempts)  cost \(job.costMicros) µ$")
            if let code = job.errorCode { print("error \(PlainText.bounded(code, 64)): \(PlainText.bounded(job.errorMessage, 500))") }
            if !attempts.isEmpty {
                print("")
                printTable(["attempt", "outcome", "error", "provider retries", "ended", "message"], attempts)
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel pending or processing jobs of a tenant; a processing job's provider call is aborted."
        )

        @OptionGroup var instance: InstanceOptions
        @Option(help: "The tenant whose jobs these are (its slug).") var tenant: String
        @Argument(help: "Job ids.") var ids: [Int64]

        func run() async throws {
            let (tenant, ids) = (self.tenant, self.ids)
            let cancelled = try await withDatabase(self.instance) { database, logger -> [(Int64, String)] in
                guard let tenantID = try await JobsCommand.tenantID(tenant, database, logger) else { throw ValidationError("no tenant '\(tenant)'") }
                let rows = try await database.query(
                    "SELECT o_id, o_was FROM oneo_cancel_jobs_of(\(tenantID), \(ids), 'cancelled by an operator')", logger: logger
                )
                var cancelled: [(Int64, String)] = []
                for try await row in rows.decode((Int64, String).self) { cancelled.append(row) }
                return cancelled
            }
            for (id, was) in cancelled { print("cancelled job \(id) (was \(was))") }
            let missed = Set(ids).subtracting(cancelled.map(\.0))
            if !missed.isEmpty {
                print("not cancelled (finished, not pending or processing, or not \(tenant)'s): \(missed.sorted().map(String.init).joined(separator: ", "))")
                throw ExitCode(1)
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue failed (or cancelled) jobs again, each with queue.max_retries + 1 more attempts.",
            discussion: "A job whose record and field already have a pending job is left as it is (the pending one is newer)."
        )

        @OptionGroup var instance: InstanceOptions
        @Option(help: "Only this tenant's jobs (its slug).") var tenant: String?
        @Option(help: "failed or cancelled.") var status: String = "failed"
        @Option(help: "Only jobs that ended at or after this time (2026-11-28 or 2026-11-28T12:00:00Z).") var since: String?
        @Option(help: "Only jobs that ended before this time.") var until: String?
        @Option(help: "Only jobs that ended with this error code.") var errorCode: String?
        @Option(help: "Attempts each job gets (default 4: three retries).") var attempts: Int = 4
        @Flag(help: "Count what would be queued; change nothing.") var dryRun = false

        func validate() throws {
            guard self.status == "failed" || self.status == "cancelled" else { throw ValidationError("--status must be failed or cancelled") }
            guard (1...21).contains(self.attempts) else { throw ValidationError("--attempts must be 1...21") }
            for (name, value) in [("--since", self.since), ("--until", self.until)] {
                if let value, TimeInput.parse(value) == nil { throw ValidationError("\(name) must be a date (2026-11-28) or an ISO 8601 time") }
            }
        }

        func run() async throws {
            var base = JobMaintenance.Filter(statuses: [JobStatus(rawValue: self.status) ?? .failed])
            base.since = self.since.flatMap(TimeInput.parse)
            base.until = self.until.flatMap(TimeInput.parse)
            base.errorCode = self.errorCode
            let filterTemplate = base
            let (tenant, attempts, dryRun) = (self.tenant, self.attempts, self.dryRun)
            let progress = ProgressLine(label: "queueing")
            let (matched, queued) = try await withDatabase(self.instance) { database, logger -> (Int, Int) in
                var filter = filterTemplate
                filter.tenant = try await JobsCommand.tenantID(tenant, database, logger)
                if tenant != nil, filter.tenant == nil { throw ValidationError("no tenant '\(tenant ?? "")'") }
                let maintenance = JobMaintenance(database: database)
                let matched = try await maintenance.count(matching: filter, logger: logger)
                if dryRun || matched == 0 { return (matched, 0) }
                let queued = try await maintenance.requeue(matching: filter, attempts: attempts, progress: { progress.show($0, of: $1) }, logger: logger)
                progress.finish()
                return (matched, queued)
            }
            print(dryRun ? "\(matched) job(s) match; --dry-run: nothing queued" : "\(queued) of \(matched) matching job(s) queued again")
        }
    }

    struct Cleanup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete finished jobs (completed, failed, cancelled) older than an age; their usage rows stay."
        )

        @OptionGroup var instance: InstanceOptions
        @Option(help: "Age in days: 30d (or 30).") var olderThan: String = "30d"
        @Option(help: "Only this tenant's jobs (its slug).") var tenant: String?

        func validate() throws {
            guard JobsCommand.days(self.olderThan) != nil else { throw ValidationError("--older-than must be a number of days, like 30d") }
        }

        func run() async throws {
            let days = JobsCommand.days(self.olderThan) ?? 30
            let tenant = self.tenant
            let progress = ProgressLine(label: "deleting")
            let deleted = try await withDatabase(self.instance) { database, logger -> Int in
                let tenantID = try await JobsCommand.tenantID(tenant, database, logger)
                if tenant != nil, tenantID == nil { throw ValidationError("no tenant '\(tenant ?? "")'") }
                let deleted = try await JobMaintenance(database: database).cleanup(
                    olderThanDays: days, tenant: tenantID, progress: { progress.show($0, of: nil) }, logger: logger
                )
                progress.finish()
                return deleted
            }
            print("deleted \(deleted) finished job(s) older than \(days) day(s)")
        }
    }

    static func tenantID(_ slug: String?, _ database: PostgresClient, _ logger: Logger) async throws -> TenantID? {
        guard let slug else { return nil }
        let rows = try await database.query("SELECT id FROM tenants WHERE slug = \(slug)", logger: logger)
        for try await id in rows.decode(TenantID.self) { return id }
        throw ValidationError("no tenant '\(slug)'")
    }

    /// `30d` or `30` → 30; nil for anything else (or more than a century).
    static func days(_ text: String) -> Int? {
        let digits = text.hasSuffix("d") ? String(text.dropLast()) : text
        guard let days = Int(digits), (0...36_500).contains(days) else { return nil }
        return days
    }
}

/// One job as the CLI prints it.
struct JobRow: Sendable {
    let id: Int64
    let tenant: String
    /// nil for a workflow node's job.
    let pipeline: Int64?
    let record: Int64?
    let field: String
    let status: String
    let attempt: Int
    let maxAttempts: Int
    let errorCode: String?
    let errorMessage: String
    let costMicros: Int64
    let createdAt: Date
    let completedAt: Date?

    nonisolated(unsafe) static let dates = ISO8601DateFormatter()

    /// The record's id, or `workflow` for a workflow node's job.
    var recordText: String { self.record.map { "\($0)" } ?? "workflow" }

    static func query(_ database: PostgresClient, _ logger: Logger, _ query: PostgresQuery) async throws -> [JobRow] {
        var rows: [JobRow] = []
        let result = try await database.query(query, logger: logger)
        for try await (id, tenant, pipeline, record, field, status, attempt, maxAttempts, code, message, cost, created, completed)
            in result.decode((Int64, String, Int64?, Int64?, String, String, Int, Int, String?, String, Int64, Date, Date?).self) {
            rows.append(JobRow(
                id: id, tenant: tenant, pipeline: pipeline, record: record, field: field, status: status, attempt: attempt,
                maxAttempts: maxAttempts, errorCode: code, errorMessage: message, costMicros: cost, createdAt: created, completedAt: completed
            ))
        }
        return rows
    }

    func jsonLine(attempts: [[String]]? = nil) throws -> String {
        var object: [String: Any] = [
            "id": self.id, "tenant": self.tenant, "pipeline": self.pipeline ?? NSNull(), "record_id": self.record ?? NSNull(), "field_name": self.field,
            "status": self.status, "attempt": self.attempt, "max_attempts": self.maxAttempts, "error_code": self.errorCode ?? NSNull(),
            "error_message": self.errorMessage, "cost_micros": self.costMicros, "created_at": Self.dates.string(from: self.createdAt),
            "completed_at": self.completedAt.map(Self.dates.string(from:)) ?? NSNull(),
        ]
        if let attempts {
            object["attempts"] = attempts.map { ["attempt": Int($0[0]) ?? 0, "outcome": $0[1], "error_code": $0[2], "provider_retries": Int($0[3]) ?? 0, "ended_at": $0[4], "error_message": $0[5]] }
        }
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}

/// Columns padded to their widest cell; cells are cut at 60 characters and stripped of control
/// characters (an error message is text from a provider).
func printTable(_ header: [String], _ rows: [[String]]) {
    let cells = ([header] + rows).map { $0.map { PlainText.bounded($0, 60) } }
    var widths = Array(repeating: 0, count: header.count)
    for row in cells { for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) } }
    for row in cells {
        print(row.enumerated().map { index, cell in index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}

/// Progress on standard error: a bar redrawn in place on a terminal, a line per update otherwise.
final class ProgressLine: Sendable {
    let label: String
    private let terminal = isatty(STDERR_FILENO) == 1

    init(label: String) {
        self.label = label
    }

    func show(_ done: Int, of total: Int?) {
        var line = "\(self.label) \(done)"
        if let total, total > 0 {
            let filled = min(30, done * 30 / total)
            line = "\(self.label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 30 - filled))] \(done)/\(total)"
        }
        FileHandle.standardError.write(Data((self.terminal ? "\r" + line : line + "\n").utf8))
    }

    func finish() {
        if self.terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
