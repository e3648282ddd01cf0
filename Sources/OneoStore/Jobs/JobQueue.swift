public import OneoWire
public import Logging
public import PostgresNIO

/// Every statement that changes a job's state after it was queued: claim, complete, fail,
/// release, give back, rescue, extend. Each is one statement whose WHERE clause enforces the rule
/// (status, attempt, worker, tenant), so a stale worker's write matches no row; each rule is
/// written once below and shared by the statements that apply it. The queue manager is its only
/// user. A statement that writes several jobs locks them in id order first, and budget periods
/// (always after jobs) in id order too, as `oneo_reserve` and the cancel function do: no two of
/// these writers ever wait on each other in a circle (a deadlock would leave attempts held until
/// their leases ran out).
public struct JobQueue: Sendable {
    public let database: PostgresClient
    /// How this queue manager's leases are marked (`locked_by`).
    public let worker: String
    public let leaseSeconds: Int

    public init(database: PostgresClient, worker: String, leaseSeconds: Int) {
        self.database = database
        self.worker = worker
        self.leaseSeconds = leaseSeconds
    }

    /// An attempt the queue manager holds, as the commit and release statements name it.
    public struct Attempt: Sendable, Hashable {
        public let tenant: TenantID
        public let job: JobID
        public let attempt: Int

        public init(tenant: TenantID, job: JobID, attempt: Int) {
            self.tenant = tenant
            self.job = job
            self.attempt = attempt
        }
    }

    /// Claims due jobs across tenants in one statement: up to `room` for each tenant listed, each
    /// tenant's oldest first. A (record, field) whose earlier job is still processing waits, so
    /// results land in the order of the changes.
    public func claim(rooms: [TenantID: Int], logger: Logger) async throws -> [ClaimedJob] {
        let wanted = rooms.filter { $0.value > 0 }
        guard !wanted.isEmpty else { return [] }
        var jobs: [ClaimedJob] = []
        let statement = JobStatements.Claim(
            tenants: wanted.keys.map(\.rawValue), rooms: wanted.keys.map { Int64(wanted[$0]!) },
            worker: self.worker, leaseSeconds: self.leaseSeconds
        )
        for try await job in try await self.database.execute(statement, logger: logger) { jobs.append(job) }
        return jobs
    }

    /// A finished attempt, priced by the queue manager, ready to commit.
    public struct Finished: Sendable {
        public let attempt: Attempt
        public let job: ClaimedJob
        public let completion: JobCompletion
        public let cost: Microdollars

        public init(attempt: Attempt, job: ClaimedJob, completion: JobCompletion, cost: Microdollars) {
            self.attempt = attempt
            self.job = job
            self.completion = completion
            self.cost = cost
        }
    }

    /// Commits finished attempts of any tenants together: one statement, one transaction, one
    /// fsync. Each is fenced by (tenant, job, attempt, worker): only those whose rows still match
    /// write their record field and their usage row. Returns the jobs committed.
    public func complete(_ batch: [Finished], logger: Logger) async throws -> Set<JobID> {
        // In job id order: the update meets its rows in the order of its input (the set is a
        // scan driving index probes), so it locks them in id order as the other writers do,
        // without a locking pass of its own (which cost a row lock per job). Were PostgreSQL to
        // plan it otherwise, a deadlock is detected and the batch commits again one by one.
        let rows: JSONValue = .array(batch.sorted { $0.attempt.job.rawValue < $1.attempt.job.rawValue }.map { finished in
            let job = finished.job
            let completion = finished.completion
            return [
                "tenant_id": .integer(finished.attempt.tenant.rawValue),
                "job_id": .integer(finished.attempt.job.rawValue), "attempt": .integer(Int64(finished.attempt.attempt)),
                "record_id": job.workflow == nil ? .integer(job.record.rawValue) : .null,
                "pipeline_id": job.workflow == nil ? .integer(job.pipeline.rawValue) : .null,
                "field_name": .string(job.fieldName), "model": .string(job.model),
                "operation": .string(job.workflow?.jobType ?? "field_generation"),
                "user_name": job.triggeredBy.map(JSONValue.string) ?? .null,
                "output": ["content": completion.value], "value": completion.value, "audit": completion.audit,
                "prompt_tokens": .integer(Int64(completion.promptTokens)), "cached_tokens": .integer(Int64(completion.cachedTokens)),
                "completion_tokens": .integer(Int64(completion.completionTokens)),
                "cost_micros": .integer(finished.cost.rawValue), "ms": .integer(Int64(completion.milliseconds)),
                "cache_hit": .bool(completion.cacheHit),
                "artifacts": .array(completion.artifacts.map { ["name": .string($0.name), "media_type": .string($0.mediaType), "data": .string($0.data)] }),
                "tool_calls": .array(completion.toolCalls.map { call in
                    ["tool": .string(call.tool), "ms": .integer(Int64(call.milliseconds)), "result_bytes": .integer(Int64(call.resultBytes)),
                     "error": call.error.map(JSONValue.string) ?? .null, "cost_micros": .integer(call.costMicros ?? 0)]
                }),
            ]
        })
        var committed = Set<JobID>()
        for try await id in try await self.database.execute(JobStatements.Complete(rows: rows, worker: self.worker), logger: logger) {
            committed.insert(JobID(id))
        }
        return committed
    }

    /// One provider call's reservation: `amount` (the call's bound, priced) against every budget
    /// that applies to the attempt's job.
    public struct Reservation: Sendable {
        public let attempt: Attempt
        public let pipeline: PipelineID
        public let fieldName: String
        public let amount: Microdollars
        /// The field's budget for the month (nil: none); the tenant's is read live.
        public let fieldLimit: Microdollars?

        public init(attempt: Attempt, pipeline: PipelineID, fieldName: String, amount: Microdollars, fieldLimit: Microdollars?) {
            self.attempt = attempt
            self.pipeline = pipeline
            self.fieldName = fieldName
            self.amount = amount
            self.fieldLimit = fieldLimit
        }
    }

    public enum ReservationOutcome: Sendable, Equatable {
        /// Reserved against every budget that applies: the call may be made.
        case granted
        /// No budget applies to the job: nothing reserved, the call may be made.
        case unlimited
        /// The attempt is no longer this queue manager's (cancelled, released): no call.
        case stale
        /// A budget has no room for the amount (`scope`: `tenant` or `field`): no call.
        case exceeded(scope: String, limit: Microdollars, spent: Microdollars, reserved: Microdollars)
    }

    /// Reserves each request in order, all budgets of one request or none, in one statement
    /// (`oneo_reserve`).
    public func reserve(_ requests: [Reservation], logger: Logger) async throws -> [ReservationOutcome] {
        guard !requests.isEmpty else { return [] }
        let input: JSONValue = .array(requests.map { request in
            [
                "tenant_id": .integer(request.attempt.tenant.rawValue), "job_id": .integer(request.attempt.job.rawValue),
                "attempt": .integer(Int64(request.attempt.attempt)), "amount": .integer(request.amount.rawValue),
                "field_limit": request.fieldLimit.map { .integer($0.rawValue) } ?? .null,
                "pipeline_id": .integer(request.pipeline.rawValue), "field_name": .string(request.fieldName),
            ]
        })
        let query: PostgresQuery = try "SELECT o_index, o_outcome, o_scope, o_limit, o_spent, o_reserved FROM oneo_reserve(\(input), \(self.worker))"
        let rows = try await self.database.query(query, logger: logger)
        var outcomes = [ReservationOutcome](repeating: .stale, count: requests.count)
        for try await (index, outcome, scope, limit, spent, reserved) in rows.decode((Int, String, String?, Int64?, Int64?, Int64?).self) {
            guard outcomes.indices.contains(index) else { continue }
            outcomes[index] = switch outcome {
            case "granted": .granted
            case "unlimited": .unlimited
            case "exceeded": .exceeded(scope: scope ?? "budget", limit: Microdollars(limit ?? 0), spent: Microdollars(spent ?? 0), reserved: Microdollars(reserved ?? 0))
            default: .stale
            }
        }
        return outcomes
    }

    /// Tokens a failed attempt was billed for, priced: recorded as its usage row.
    public struct Billed: Sendable {
        public let usage: TokenUsage
        public let cost: Microdollars

        public init(usage: TokenUsage, cost: Microdollars) {
            self.usage = usage
            self.cost = cost
        }
    }

    /// Ends an attempt that did not complete, keeping its error on the job's history. A
    /// retryable failure (`retryAfter` set) goes back to `pending` after that delay while
    /// attempts remain; a newer pending job for the same field supersedes it. Returns whether the
    /// attempt was still ours.
    /// The attempt's reservation is settled in the same statement: at the billed cost (nothing
    /// when nothing was billed), or, when `unmetered` (a call's cost is unknown), at the whole
    /// reservation.
    @discardableResult
    public func fail(
        _ attempt: Attempt, code: String, message: String, retryAfter delay: Duration?, providerRetries: Int = 0, billed: Billed? = nil,
        unmetered: Bool = false, logger: Logger
    ) async throws -> Bool {
        let seconds = delay.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 } ?? 0
        let prompt = billed?.usage.promptTokens ?? 0
        let cached = billed?.usage.cachedTokens ?? 0
        let completion = billed?.usage.completionTokens ?? 0
        let cost = billed?.cost.rawValue ?? 0
        let rows = try await self.database.query(
            """
            WITH ended AS (
                UPDATE ai_jobs j SET \(unescaped: Self.afterAttempt(retry: delay != nil)),
                    run_at = now() + make_interval(secs => \(seconds)),
                    error_code = \(code), error_message = \(message), error_retryable = \(delay != nil)
                WHERE j.id = \(attempt.job) AND j.tenant_id = \(attempt.tenant) AND j.status = 'processing'
                  AND j.attempt = \(attempt.attempt) AND j.locked_by = \(self.worker)
                RETURNING \(unescaped: Self.endedColumns), \(max(0, min(providerRetries, 1_000)))::int AS provider_retries,
                          CASE WHEN \(unmetered) THEN greatest(j.reserved_micros, \(cost)::bigint) ELSE \(cost)::bigint END AS charge_micros),
            \(unescaped: Self.history),
            \(unescaped: Self.settle(from: "ended")),
            -- A failed attempt the provider answered (and bills) is charged like a completed one;
            -- one whose cost is unknown is charged its reservation.
            charged AS (
                INSERT INTO ai_usage (tenant_id, job_id, attempt, user_name, ai_provider, model_name, operation_type, tokens_used,
                                      prompt_tokens, cached_tokens, completion_tokens, cost_micros, response_time_ms, pipeline_id, record_id,
                                      field_name, metered)
                SELECT tenant_id, id, attempt, triggered_by, 'openai', model_name, job_type, \(prompt + completion)::int,
                       \(prompt)::int, \(cached)::int, \(completion)::int, charge_micros, 0, pipeline_id, record_id, field_name, NOT \(unmetered)
                FROM ended WHERE \(billed != nil) OR charge_micros > 0
                ON CONFLICT (job_id, attempt) DO NOTHING)
            SELECT id FROM ended
            """,
            logger: logger
        )
        var held = false
        for try await _ in rows { held = true }
        return held
    }

    /// Returns attempts that were never started (their processor went away before it took them,
    /// or refused them while draining) to `pending` without spending one of the job's attempts:
    /// the attempt number stays spent (so a report naming it can never match the job's next
    /// attempt) and `max_attempts` grows by one to make up for it.
    @discardableResult
    public func giveBack(_ attempts: [Attempt], logger: Logger) async throws -> Int {
        guard !attempts.isEmpty else { return 0 }
        // An attempt that never started holds no reservation; were one there (a processor that
        // reserved and then declined), it is charged as spent like any other unknown.
        let rows = try await self.database.query(
            """
            WITH locked AS (
                SELECT id FROM ai_jobs WHERE id = ANY(\(attempts.map(\.job.rawValue))) ORDER BY id FOR UPDATE),
            ended AS (
                UPDATE ai_jobs j SET status = CASE WHEN \(unescaped: Self.superseded) THEN 'cancelled' ELSE 'pending' END,
                    completed_at = CASE WHEN \(unescaped: Self.superseded) THEN now() END,
                    max_attempts = j.max_attempts + 1, lease_until = NULL, locked_by = NULL, started_at = NULL, updated_at = now()
                FROM unnest(\(attempts.map(\.tenant.rawValue)), \(attempts.map(\.job.rawValue)), \(attempts.map { Int64($0.attempt) }))
                     AS a(tenant_id, id, attempt)
                WHERE j.id = a.id AND j.tenant_id = a.tenant_id AND j.attempt = a.attempt
                  AND j.status = 'processing' AND j.locked_by = \(self.worker) AND j.id IN (SELECT id FROM locked)
                RETURNING \(unescaped: Self.endedColumns), j.reserved_micros AS charge_micros),
            \(unescaped: Self.settle(from: "ended")),
            \(unescaped: Self.unmeteredUsage)
            SELECT id FROM ended
            """,
            logger: logger
        )
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }

    /// Whose processing jobs `release` returns to the queue.
    public enum Holder: Sendable {
        /// Attempts this queue manager handed to a processor that stopped before reporting them.
        case attempts([Attempt])
        /// Every attempt a queue manager that is gone held (its successor releases them at start).
        case worker(String)
        /// Attempts of any worker whose lease ran out (their worker hung or vanished unseen).
        /// Rows a commit holds are skipped (the commit decides them; a later rescue takes what
        /// it leaves), so the rescuer and the group commit never wait on each other or deadlock.
        case expired
    }

    /// Returns processing jobs whose worker will not finish them to the queue: back to `pending`
    /// while attempts remain, `cancelled` when a newer pending job superseded them, `failed` on
    /// their last attempt. Returns how many it released.
    @discardableResult
    public func release(_ holder: Holder, logger: Logger) async throws -> Int {
        let rows: PostgresRowSequence
        switch holder {
        case .attempts(let attempts):
            guard !attempts.isEmpty else { return 0 }
            rows = try await self.database.query(
                """
                WITH locked AS (
                    SELECT id FROM ai_jobs WHERE id = ANY(\(attempts.map(\.job.rawValue))) ORDER BY id FOR UPDATE),
                ended AS (
                    UPDATE ai_jobs j SET \(unescaped: Self.afterAttempt(retry: true)), run_at = now(),
                        error_code = \(JobFailureCode.processorStopped.rawValue), error_retryable = true,
                        error_message = 'the processor stopped before finishing this job; it was released for retry'
                    FROM unnest(\(attempts.map(\.tenant.rawValue)), \(attempts.map(\.job.rawValue)), \(attempts.map { Int64($0.attempt) }))
                         AS a(tenant_id, id, attempt)
                    WHERE j.id = a.id AND j.tenant_id = a.tenant_id AND j.attempt = a.attempt
                      AND j.status = 'processing' AND j.locked_by = \(self.worker) AND j.id IN (SELECT id FROM locked)
                    RETURNING \(unescaped: Self.endedColumns), 0 AS provider_retries, j.reserved_micros AS charge_micros),
                \(unescaped: Self.history),
                \(unescaped: Self.settle(from: "ended")),
                \(unescaped: Self.unmeteredUsage)
                SELECT id FROM ended
                """,
                logger: logger
            )
        case .worker(let worker):
            rows = try await self.database.query(
                """
                WITH ended AS (
                    UPDATE ai_jobs j SET \(unescaped: Self.afterAttempt(retry: true)), run_at = now(),
                        error_code = \(JobFailureCode.processorStopped.rawValue), error_retryable = true,
                        error_message = 'the queue manager holding this job stopped; it was released for retry'
                    WHERE j.status = 'processing' AND j.locked_by = \(worker)
                      AND j.id IN (SELECT id FROM ai_jobs WHERE status = 'processing' AND locked_by = \(worker) ORDER BY id FOR UPDATE)
                    RETURNING \(unescaped: Self.endedColumns), 0 AS provider_retries, j.reserved_micros AS charge_micros),
                \(unescaped: Self.history),
                \(unescaped: Self.settle(from: "ended")),
                \(unescaped: Self.unmeteredUsage)
                SELECT id FROM ended
                """,
                logger: logger
            )
        case .expired:
            rows = try await self.database.query(
                """
                WITH ended AS (
                    UPDATE ai_jobs j SET \(unescaped: Self.afterAttempt(retry: true)), run_at = now(),
                        error_code = \(JobFailureCode.leaseExpired.rawValue), error_retryable = true,
                        error_message = 'the worker holding this job stopped before finishing it'
                    FROM (SELECT id FROM ai_jobs WHERE status = 'processing' AND lease_until < now()
                          ORDER BY id FOR UPDATE SKIP LOCKED) expired
                    WHERE j.id = expired.id AND j.status = 'processing' AND j.lease_until < now()
                    RETURNING \(unescaped: Self.endedColumns), 0 AS provider_retries, j.reserved_micros AS charge_micros),
                \(unescaped: Self.history),
                \(unescaped: Self.settle(from: "ended")),
                \(unescaped: Self.unmeteredUsage)
                SELECT id FROM ended
                """,
                logger: logger
            )
        }
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }

    /// Moves the leases of these attempts (the ones a processor is working on) forward: called
    /// well within the lease, so a slow provider call never loses its job while the queue
    /// manager and the processor live. An attempt nobody works on is not extended and expires.
    /// Returns the jobs whose leases it extended: one missing from it is no longer processing
    /// (it was cancelled), and its processor should stop.
    @discardableResult
    public func extendLeases(_ jobs: [JobID], logger: Logger) async throws -> Set<JobID> {
        guard !jobs.isEmpty else { return [] }
        let rows = try await self.database.query(
            """
            WITH locked AS (
                SELECT id FROM ai_jobs WHERE id = ANY(\(jobs.map(\.rawValue))) AND status = 'processing' ORDER BY id FOR UPDATE)
            UPDATE ai_jobs SET lease_until = now() + make_interval(secs => \(Double(self.leaseSeconds)))
            WHERE id IN (SELECT id FROM locked) AND status = 'processing' AND locked_by = \(self.worker)
            RETURNING id
            """,
            logger: logger
        )
        var extended = Set<JobID>()
        for try await id in rows.decode(JobID.self) { extended.insert(id) }
        return extended
    }

    /// Whether a job of the tenant is still processing under our lease: a cancel notification
    /// is only acted on when the row says so (any database role may NOTIFY).
    public func isProcessing(_ job: JobID, tenant: TenantID, logger: Logger) async throws -> Bool {
        let rows = try await self.database.query(
            "SELECT 1 FROM ai_jobs WHERE id = \(job.rawValue) AND tenant_id = \(tenant.rawValue) AND status = 'processing' AND locked_by = \(self.worker)",
            logger: logger
        )
        for try await _ in rows { return true }
        return false
    }

    /// Active tenants with due work (pending jobs whose time has come, or processing jobs whose
    /// lease ran out), up to `limit`. Partial-index probes per tenant.
    public func tenantsWithDueWork(limit: Int, logger: Logger) async throws -> [TenantID] {
        let rows = try await self.database.query(
            """
            SELECT t.id FROM tenants t
            WHERE t.status = 'active' AND (EXISTS (
                SELECT 1 FROM ai_jobs j WHERE j.tenant_id = t.id AND j.status = 'pending' AND j.run_at <= now()
            ) OR EXISTS (
                SELECT 1 FROM ai_jobs j WHERE j.tenant_id = t.id AND j.status = 'processing' AND j.lease_until < now()
            ))
            ORDER BY t.id LIMIT \(Int64(limit))
            """,
            logger: logger
        )
        var tenants: [TenantID] = []
        for try await id in rows.decode(TenantID.self) { tenants.append(id) }
        return tenants
    }

    /// A pipeline's fields in order, with the version they were read at (one transaction, so the
    /// two agree). Configs are not read: rendering needs each field's kind, not its prompt.
    public func fields(tenant: TenantID, pipeline: PipelineID, logger: Logger) async throws -> PipelineFields {
        try await self.database.withTransaction(logger: logger) { connection in
            var version: Int64 = 0
            let versions = try await connection.query(
                "SELECT fields_version FROM pipelines WHERE id = \(pipeline) AND tenant_id = \(tenant)", logger: logger
            )
            for try await value in versions.decode(Int64.self) { version = value }
            let rows = try await connection.query(
                """
                SELECT id, slug, name, field_type, position FROM fields
                WHERE tenant_id = \(tenant) AND pipeline_id = \(pipeline) ORDER BY position, id
                """,
                logger: logger
            )
            var fields: [PipelineField] = []
            for try await (id, slug, name, type, position) in rows.decode((FieldID, String, String, String, Int).self) {
                fields.append(PipelineField(id: id, slug: slug, name: name, type: FieldType(rawValue: type) ?? .text, position: position, aiConfig: nil))
            }
            return PipelineFields(pipeline: pipeline, version: version, fields: fields)
        }
    }

    // MARK: The rules, each written once (constant SQL: no input in it)

    /// What an `ended` CTE returns for `history`, `settle` and `unmeteredUsage` (each statement
    /// adds its `charge_micros`: what the attempt is charged against its budgets).
    static let endedColumns = """
        j.tenant_id, j.id, j.attempt, j.status, j.error_code, j.error_message, j.started_at, j.triggered_by, j.model_name, j.pipeline_id,
        j.record_id, j.field_name, j.job_type, j.reserved_micros, j.reserved_periods
        """

    /// Charges the attempts a CTE ended (its columns `reserved_periods`, `charge_micros`,
    /// `tenant_id`, `pipeline_id`, `field_name`) to the budget periods they reserved against: each
    /// period's spent amount rises by what they are charged, in the statement that takes them out
    /// of `processing` (which is what releases their reservations). An attempt charged with no
    /// reservation (handed out before a budget existed) is charged to its month's periods that
    /// exist, so a ledger counts every micro-dollar spent. Periods are locked in id order, as
    /// `oneo_reserve` locks them: ledger writers never deadlock.
    static func settle(from ended: String) -> String {
        """
        ledger AS (
            SELECT x.id, sum(x.charge)::bigint AS charge FROM (
                SELECT p.id, e.charge_micros AS charge
                FROM \(ended) e CROSS JOIN LATERAL unnest(e.reserved_periods) AS p(id)
                UNION ALL
                SELECT b.id, e.charge_micros
                FROM \(ended) e JOIN tenants t ON t.id = e.tenant_id
                JOIN budget_periods b ON b.tenant_id = e.tenant_id AND b.period_start = date_trunc('month', now() AT TIME ZONE t.time_zone)::date
                     AND ((b.scope = 'tenant' AND b.pipeline_id = 0 AND b.field_name = '')
                          OR (b.scope = 'field' AND b.pipeline_id = coalesce(e.pipeline_id, 0) AND b.field_name = e.field_name))
                WHERE cardinality(e.reserved_periods) = 0 AND e.charge_micros > 0) x
            GROUP BY x.id),
        settled AS (
            UPDATE budget_periods b SET spent_micros = b.spent_micros + l.charge, updated_at = now()
            FROM ledger l, (SELECT k.id FROM budget_periods k WHERE k.id IN (SELECT id FROM ledger) ORDER BY k.id FOR UPDATE) locked
            WHERE b.id = l.id AND locked.id = l.id)
        """
    }

    /// A usage row for each ended attempt charged its reservation because what it cost is not
    /// known (its processor or queue manager stopped, it was cancelled or passed its deadline
    /// mid-call): the spend the budgets count is always on a usage row.
    static let unmeteredUsage = """
        unmetered AS (
            INSERT INTO ai_usage (tenant_id, job_id, attempt, user_name, ai_provider, model_name, operation_type, tokens_used,
                                  cost_micros, response_time_ms, pipeline_id, record_id, field_name, metered)
            SELECT tenant_id, id, attempt, triggered_by, 'openai', model_name, job_type, 0, charge_micros, 0,
                   pipeline_id, record_id, field_name, false
            FROM ended WHERE charge_micros > 0
            ON CONFLICT (job_id, attempt) DO NOTHING)
        """

    /// Keeps an attempt that ended without a result on its job's history (the `ended` CTE's
    /// rows), with what became of the job: retried, failed or cancelled (superseded).
    static let history = """
        history AS (
            INSERT INTO ai_job_attempts (tenant_id, job_id, attempt, outcome, error_code, error_message, provider_retries, started_at)
            SELECT tenant_id, id, attempt, CASE status WHEN 'pending' THEN 'retried' ELSE status END,
                   coalesce(error_code, 'internal'), error_message, provider_retries, started_at
            FROM ended
            ON CONFLICT DO NOTHING)
        """

    /// A newer pending job for the same (record, field) exists: this one is superseded.
    static let superseded = """
        EXISTS (SELECT 1 FROM ai_jobs p WHERE p.tenant_id = j.tenant_id AND p.record_id = j.record_id
                AND p.field_name = j.field_name AND p.status = 'pending')
        """

    /// An attempt ended without a result: superseded → cancelled; retryable with attempts left
    /// → pending (counted as a retry); otherwise failed. The lease is dropped either way.
    static func afterAttempt(retry: Bool) -> String {
        let again = retry ? "j.attempt < j.max_attempts" : "false"
        return """
            status = CASE WHEN \(superseded) THEN 'cancelled' WHEN \(again) THEN 'pending' ELSE 'failed' END,
            retry_count = j.retry_count + CASE WHEN \(again) THEN 1 ELSE 0 END,
            completed_at = CASE WHEN \(superseded) THEN now() WHEN \(again) THEN NULL ELSE now() END,
            lease_until = NULL, locked_by = NULL, updated_at = now()
            """
    }
}
