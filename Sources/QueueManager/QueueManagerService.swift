import Foundation
public import Logging
public import OneoWire
public import OneoStore
public import OneoCore
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// The queue manager: the only process that reads and writes jobs. It holds the one LISTEN,
/// claims due work across tenants in one statement, hands each job to its tenant's processor over
/// the socket the supervisor connected, commits results in group transactions fenced per job,
/// releases a processor's attempts the moment its socket closes, rescues expired leases, and
/// tells the supervisor which tenants need a processor.
public struct QueueManagerService: Service {
    public struct Settings: Sendable {
        /// How this process's leases are marked (`locked_by`).
        public var worker: String
        /// Leases, polls, batch and frame caps (`EngineTunables.Queue`, `.Frames`).
        public var tunables: EngineTunables
        /// Workers of earlier queue managers, whose attempts are released at start.
        public var retiredWorkers: [String]
        /// Signs the tool tickets of jobs whose field has tools on (nil: no tools are offered).
        public var toolTickets: ToolTicketSigner?

        /// The tools with executors: a field's `allowed_tools` are granted among these.
        public var startedTools: Set<String>

        public init(worker: String, tunables: EngineTunables = EngineTunables(), retiredWorkers: [String] = [], toolTickets: ToolTicketSigner? = nil, startedTools: Set<String> = ToolCatalog.available) {
            self.startedTools = startedTools
            self.worker = worker
            self.tunables = tunables
            self.retiredWorkers = retiredWorkers
            self.toolTickets = toolTickets
        }

        var leaseSeconds: Int { self.tunables.queue.leaseSeconds }
        /// Claim again at least this often (NOTIFY and reports make most claims immediate).
        var claimPollInterval: Duration { .tunable(milliseconds: self.tunables.queue.claimPollMilliseconds) }
        /// How often tenants with due work and no processor are looked for.
        var demandPollInterval: Duration { .tunable(milliseconds: self.tunables.queue.demandPollMilliseconds) }
        /// How often expired leases are returned to the queue.
        var rescueInterval: Duration { .tunable(milliseconds: self.tunables.queue.rescueIntervalMilliseconds) }
    }

    /// A processor's end of a socketpair, handed over by the supervisor.
    public typealias ProcessorLink = OneoWire.ProcessorLink

    private let settings: Settings
    private let database: PostgresClient
    private let queue: JobQueue
    private let links: AsyncStream<ProcessorLink>
    private let tellSupervisor: @Sendable (ChildMessage) -> Void
    private let logger: Logger
    private let dispatcher = Dispatcher()
    /// Cancel notifications being checked against their rows right now (at most 16).
    private let cancelChecks = InFlight()
    private let committer: GroupCommitter
    /// Budget reservations: a group commit of their own, on every budgeted call's path.
    private let reservations: GroupCommitter
    private let fieldLists = FieldListCache()
    private let retryPolicy: RetryPolicy
    private let maintenance: Maintenance
    /// Each element asks for a claim: `true` for every connected tenant (the poll), `false` for
    /// those that may have work.
    private let wakeups: AsyncStream<Bool>
    private let wake: AsyncStream<Bool>.Continuation
    /// What heartbeats report: attempts held by processors, and results committed.
    public let activity = QueueActivity()

    public init(settings: Settings, database: PostgresClient, links: AsyncStream<ProcessorLink>, tellSupervisor: @escaping @Sendable (ChildMessage) -> Void, logger: Logger) {
        self.settings = settings
        self.database = database
        self.queue = JobQueue(database: database, worker: settings.worker, leaseSeconds: settings.leaseSeconds)
        self.retryPolicy = RetryPolicy(tunables: settings.tunables.queue)
        self.maintenance = Maintenance(database: database, tunables: settings.tunables, logger: logger)
        self.links = links
        self.tellSupervisor = tellSupervisor
        self.logger = logger
        let activity = self.activity
        self.committer = GroupCommitter(
            queue: self.queue, maximumBatch: settings.tunables.queue.commitBatch,
            window: .tunable(milliseconds: settings.tunables.queue.commitWindowMilliseconds), logger: logger
        ) { committed, _ in
            activity.add(committed: committed)
        }
        // No window for reservations: a call waits on each, and they commit on their own.
        self.reservations = GroupCommitter(queue: self.queue, maximumBatch: settings.tunables.queue.commitBatch, window: .zero, logger: logger) { _, _ in }
        (self.wakeups, self.wake) = AsyncStream<Bool>.makeStream(bufferingPolicy: .bufferingNewest(8))
    }

    public func run() async throws {
        for worker in self.settings.retiredWorkers {
            do {
                let released = try await self.queue.release(.worker(worker), logger: self.logger)
                if released > 0 { self.logger.notice("released the attempts of a stopped queue manager", metadata: ["worker": "\(worker)", "jobs.released": "\(released)"]) }
            } catch {
                self.logger.error("releasing a stopped queue manager's attempts failed; their leases will expire", metadata: ["error": "\(SafeErrorDescription.of(error))"])
            }
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.committer.run() }
            group.addTask { await self.reservations.run() }
            group.addTask { await self.acceptLinks() }
            group.addTask {
                await self.listen([
                    JobChannel.jobsQueued: { payload in self.workQueued(payload) },
                    JobChannel.tenantsChanged: { _ in self.tellSupervisor(.tenantsChanged) },
                    JobChannel.jobsCancelled: { payload in self.jobCancelled(payload) },
                ])
            }
            group.addTask { await self.every(.milliseconds(500)) { await self.stopOverdueAttempts() } }
            group.addTask { await self.maintenance.run() }
            group.addTask { await self.every(self.settings.claimPollInterval) { self.wake.yield(true) } }
            group.addTask { await self.every(self.settings.demandPollInterval) { await self.askForProcessors() } }
            group.addTask { await self.every(self.settings.rescueInterval) { await self.rescue() } }
            group.addTask { await self.every(.seconds(max(1, Int64(self.settings.leaseSeconds / 4)))) { await self.extendLeases() } }
            await withGracefulShutdownHandler {
                await self.claimLoop()
            } onGracefulShutdown: {
                self.wake.finish()
            }
            group.cancelAll()
        }
        self.logger.notice("queue manager stopped", metadata: self.activity.summary)
    }

    // MARK: Claiming and handing out

    private func claimLoop() async {
        let window = Duration.tunable(milliseconds: self.settings.tunables.queue.claimWindowMilliseconds)
        for await everyone in self.wakeups {
            // Under load (processors hold work), let other NOTIFYs join this claim: one claim
            // for many jobs instead of one each. Idle, claim at once.
            if !everyone, window > .zero, self.dispatcher.heldCount > 0 { try? await Task.sleep(for: window) }
            var again = true
            var all = everyone
            while again, !Task.isCancelled {
                again = false
                let rooms = self.dispatcher.rooms(all: all)
                all = false
                guard !rooms.isEmpty else { break }
                let claimed: [ClaimedJob]
                do {
                    claimed = try await self.queue.claim(rooms: rooms, logger: self.logger)
                } catch {
                    self.logger.error("claiming jobs failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
                    break
                }
                var counts: [TenantID: Int] = [:]
                for job in claimed { counts[job.tenant, default: 0] += 1 }
                self.dispatcher.claimed(counts, of: rooms)
                self.activity.add(claim: claimed.count)
                guard !claimed.isEmpty else { break }
                await self.handOut(claimed)
                // A tenant that filled its room may have more waiting: claim again at once.
                again = counts.contains { rooms[$0.key] == $0.value }
            }
        }
    }

    private func handOut(_ claimed: [ClaimedJob]) async {
        var ready: [(ClaimedJob, JobOrder)] = []
        for job in claimed {
            // A model without a price is never called: what it costs could not be known.
            guard self.settings.tunables.models.model(job.model) != nil else {
                await self.fail(job, code: JobFailureCode.modelUnpriced.rawValue, message: "model '\(PlainText.bounded(job.model, 100))' has no price; add it with serve --models", retryAfter: nil)
                continue
            }
            switch job.config {
            case .success(let config):
                var job = job
                let models = self.settings.tunables.models
                if config.enableTools, job.tenantToolsEnabled, self.settings.toolTickets != nil {
                    job.tools = Array(Set(config.allowedTools).intersection(self.settings.startedTools)).sorted()
                }
                let fieldLimit = job.fieldBudget(config: config, defaultCents: self.settings.tunables.budgets.fieldLimitCents)
                if fieldLimit != nil || job.tenantMonthlyBudget != nil {
                    job.budget = ClaimedJob.Budget(fieldLimit: fieldLimit, outputLimit: config.maxTokens)
                    // Every call that may ask for tools reserves the most its reply's calls can cost.
                    let dearest = job.tools.map { Self.toolFee($0, models) }.max() ?? .zero
                    job.budget?.toolFeesPerCall = Microdollars(dearest.rawValue * Int64(ToolLoop.maximumCallsPerRound))
                }
                var order = job.order(config: config, budgeted: job.budget != nil)
                if !job.tools.isEmpty, let signer = self.settings.toolTickets {
                    order.toolTicket = signer.ticket(
                        tenant: job.tenant, job: job.id, attempt: job.attempt, tools: job.tools,
                        validFor: .seconds(max(60, self.settings.leaseSeconds * 4))
                    )
                }
                ready.append((job, order))
            case .failure(let error):
                await self.fail(job, code: JobFailureCode.badTemplate.rawValue, message: "the field's stored config is invalid: \(error)", retryAfter: nil)
            }
        }
        var lists: [FieldsKey: PipelineFields] = [:]
        for key in self.dispatcher.missingFields(for: ready.map(\.0)) {
            let newest = ready.lazy.filter { $0.0.tenant == key.tenant && $0.0.pipeline == key.pipeline }.map(\.0.fieldsVersion).max() ?? 0
            if let cached = self.fieldLists.get(key), cached.version >= newest {
                lists[key] = cached
                continue
            }
            do {
                let fresh = try await self.queue.fields(tenant: key.tenant, pipeline: key.pipeline, logger: self.logger)
                self.fieldLists.put(key, fresh)
                lists[key] = fresh
            } catch {
                self.logger.error("reading a pipeline's fields failed", metadata: ["pipeline.id": "\(key.pipeline)", "error": "\(SafeErrorDescription.of(error))"])
            }
        }
        let unsent = self.dispatcher.send(ready, fields: lists)
        self.activity.setHeld(self.dispatcher.heldCount)
        if !unsent.isEmpty {
            do {
                try await self.queue.giveBack(unsent.map(\.attemptReference), logger: self.logger)
            } catch {
                self.logger.error("returning unsent jobs failed; their leases will expire", metadata: ["error": "\(SafeErrorDescription.of(error))"])
            }
        }
    }

    // MARK: Processors' connections and reports

    private func acceptLinks() async {
        await withDiscardingTaskGroup { group in
            for await link in self.links {
                group.addTask { await self.serve(link) }
            }
        }
    }

    private func serve(_ link: ProcessorLink) async {
        let logger = {
            var logger = self.logger
            logger[metadataKey: "child"] = "\(link.name)"
            return logger
        }()
        let (outbound, sender) = AsyncStream<QueueMessage>.makeStream()
        let id = self.dispatcher.connect(tenant: link.tenant, name: link.name, concurrency: link.concurrency, outbound: sender)
        logger.info("processor connected", metadata: ["processor.concurrency": "\(link.concurrency)"])
        do {
            let channel = try await FrameChannel<ProcessorReport, QueueMessage>.open(
                descriptor: link.descriptor, inboundLimit: self.settings.tunables.frames.processorReportBytes,
                outboundLimit: self.settings.tunables.frames.queueMessageBytes
            )
            self.wake.yield(false)
            try await channel.run { inbound, writer in
                // Whichever side ends first (the processor closed, a write failed, the processor
                // broke the protocol) ends the connection: no half-open socket keeps jobs held.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await message in outbound {
                            do {
                                try await writer.send(message)
                            } catch let error as WireError where error.code == .oversized {
                                guard case .job(let order) = message else { throw error }
                                // Too big to send: that job fails, the connection carries on.
                                await self.refuseOversized(order, on: id, logger: logger)
                            }
                        }
                    }
                    group.addTask {
                        for try await report in inbound {
                            guard await self.received(report, on: id, tenant: link.tenant, logger: logger) else {
                                throw WireError(.malformed, detail: "too many reports for attempts this processor does not hold")
                            }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            logger.warning("processor connection ended", metadata: ["error": "\(SafeErrorDescription.of(error))"])
        }
        let orphaned = self.dispatcher.disconnect(id)
        self.activity.setHeld(self.dispatcher.heldCount)
        if !orphaned.isEmpty {
            do {
                let released = try await self.queue.release(.attempts(orphaned.map(\.attemptReference)), logger: logger)
                logger.notice("processor gone; released its jobs for retry", metadata: ["jobs.released": "\(released)"])
            } catch {
                logger.error("releasing a processor's jobs failed; their leases will expire", metadata: ["error": "\(SafeErrorDescription.of(error))"])
            }
        } else {
            logger.info("processor disconnected")
        }
        self.wake.yield(false)
    }

    /// Handles one report; false when the processor has sent too many that match nothing it
    /// holds (a broken or hostile processor, whose connection is then closed).
    private func received(_ report: ProcessorReport, on id: Int, tenant: TenantID, logger: Logger) async -> Bool {
        switch report {
        case .draining:
            self.dispatcher.markDraining(id)
        case .completed(let completion):
            let stopped = self.dispatcher.isStopping(id, job: completion.job)
            guard let job = self.settled(id, completion.job, completion.attempt, logger: logger) else { return self.dispatcher.strayReport(id) }
            // Cancelled or past its deadline: its row has moved on, the result is not wanted.
            if stopped { return true }
            // The value and audit come from the processor: refused whole when PostgreSQL could
            // not store them (a NUL) or when they are larger than any result should be, so one
            // bad result never fails a batch of other tenants' results.
            // Priced here from the model we sent and the tokens reported, within sane bounds: a
            // processor does not set its own tenant's bill.
            let prompt = min(max(0, completion.promptTokens), 10_000_000)
            let cached = min(max(0, completion.cachedTokens), prompt)
            let output = min(max(0, completion.completionTokens), 10_000_000)
            let bytes: Int
            switch Self.storable(completion) {
            case .failure(let problem):
                // The call was answered, so it is billed even though its result is refused.
                let models = self.settings.tunables.models
                let cost = (models.model(job.model) ?? models.mostExpensive).cost(promptTokens: prompt, cachedTokens: cached, completionTokens: output)
                let billed = JobQueue.Billed(usage: TokenUsage(promptTokens: prompt, cachedTokens: cached, completionTokens: output), cost: cost)
                await self.fail(job, code: "invalid_output", message: PlainText.bounded(problem.message, 500), retryAfter: nil, billed: billed)
                return true
            case .success(let size):
                bytes = size
            }
            var bounded = completion
            bounded.promptTokens = prompt
            bounded.cachedTokens = cached
            bounded.completionTokens = output
            bounded.milliseconds = min(max(0, completion.milliseconds), 86_400_000)
            // Every model handed out has a price (checked before it went out); were it gone, the
            // most expensive price applies, never none.
            let models = self.settings.tunables.models
            let tokens = (models.model(job.model) ?? models.mostExpensive).cost(promptTokens: prompt, cachedTokens: cached, completionTokens: output)
            let cost = Microdollars(tokens.rawValue + Self.toolFees(completion.toolCalls, granted: job.tools, models).rawValue)
            bounded.toolCalls = Self.pricedToolCalls(completion.toolCalls, granted: job.tools, models)
            bounded.artifacts = Self.storableArtifacts(completion.artifacts)
            // The batch's byte cap counts what the commit carries besides value and audit.
            let carried = bytes + bounded.artifacts.reduce(0) { $0 + $1.data.utf8.count } + bounded.toolCalls.count * 300
            self.dispatcher.awaitingCommit(id)
            self.committer.submit(JobQueue.Finished(attempt: job.attemptReference, job: job, completion: bounded, cost: cost), bytes: carried) {
                if self.dispatcher.committed(id) { self.wake.yield(false) }
            }
        case .failed(let failure):
            let stopped = self.dispatcher.isStopping(id, job: failure.job)
            guard let job = self.settled(id, failure.job, failure.attempt, logger: logger) else { return self.dispatcher.strayReport(id) }
            if stopped { return true }
            // Transient: queued again after our backoff (or the provider's, if longer) while
            // attempts remain. Permanent: failed now.
            let delay = failure.retryable ? self.retryPolicy.delay(afterAttempt: job.attempt, providerHintMilliseconds: failure.retryAfterMilliseconds) : nil
            // Calls the provider answered are billed even though the attempt failed: priced here,
            // within the same bounds as a completion's tokens.
            let fees = Self.toolFees(failure.toolCalls, granted: job.tools, self.settings.tunables.models)
            let usage = failure.usage ?? (fees > .zero ? TokenUsage(promptTokens: 0, cachedTokens: 0, completionTokens: 0) : nil)
            let billed = usage.map { usage -> JobQueue.Billed in
                let prompt = min(max(0, usage.promptTokens), 20_000_000)
                let bounded = TokenUsage(
                    promptTokens: prompt, cachedTokens: min(max(0, usage.cachedTokens), prompt), completionTokens: min(max(0, usage.completionTokens), 20_000_000)
                )
                let models = self.settings.tunables.models
                let cost = (models.model(job.model) ?? models.mostExpensive).cost(
                    promptTokens: bounded.promptTokens, cachedTokens: bounded.cachedTokens, completionTokens: bounded.completionTokens
                )
                return JobQueue.Billed(usage: bounded, cost: Microdollars(cost.rawValue + fees.rawValue))
            }
            await self.fail(
                job, code: PlainText.bounded(failure.code, 64), message: PlainText.bounded(failure.message, 500), retryAfter: delay,
                providerRetries: failure.providerRetries, billed: billed, unmetered: failure.unmetered
            )
        case .reserve(let request):
            // A reservation this connection may not ask for is refused, and counted like any
            // stray report: a processor that floods them is cut off.
            guard self.reserve(request, on: id, logger: logger) else { return self.dispatcher.strayReport(id) }
        case .declined(let job, let attempt):
            guard let held = self.settled(id, job, attempt, logger: logger) else { return self.dispatcher.strayReport(id) }
            // A processor declines only while draining or full: it gets nothing more on this
            // connection, and the job goes back without spending an attempt (a new attempt
            // number, so an old decline can never match it again).
            self.dispatcher.markDraining(id)
            _ = try? await self.queue.giveBack([held.attemptReference], logger: logger)
        }
        return true
    }

    /// Reserves a call's bound, priced here from the model we sent (the processor names only
    /// sizes), against the job's budgets, in the group commit; the answer goes back once the
    /// reservation is durable. A refusal means no call: the processor reports the job failed.
    /// Returns false when the request was refused unasked-for (not held here, stopped, repeated).
    /// One call of a tool, from the catalog (none listed: free).
    static func toolFee(_ tool: String, _ models: ModelCatalog) -> Microdollars {
        models.toolFee(tool)
    }

    /// The calls as the job keeps them: at most as many as the loop allows, each with its fee
    /// (0 for a call that did not run or names a tool not granted).
    static func pricedToolCalls(_ calls: [ToolCallRecord], granted: [String], _ models: ModelCatalog) -> [ToolCallRecord] {
        calls.prefix(ToolLoop.maximumRounds * ToolLoop.maximumCallsPerRound * 2).map { call in
            // The name and error came from the model and the processor: a known tool's name or
            // `unknown`, the error as plain bounded text, nothing the commit could choke on.
            var priced = ToolCallRecord(
                tool: ToolCatalog.names.contains(call.tool) ? call.tool : "unknown", milliseconds: min(max(0, call.milliseconds), 86_400_000),
                resultBytes: min(max(0, call.resultBytes), 1 << 30), error: call.error.map { PlainText.bounded($0, 200) }
            )
            priced.costMicros = granted.contains(priced.tool) && priced.error == nil ? Self.toolFee(priced.tool, models).rawValue : 0
            return priced
        }
    }

    /// The fees of the tool calls an attempt reports: only calls that ran (no error: refused
    /// ones cost nothing), only tools the attempt was granted, at most as many as the loop
    /// allows (the processor names the calls, we price them).
    static func toolFees(_ calls: [ToolCallRecord], granted: [String], _ models: ModelCatalog) -> Microdollars {
        // Calls that ran first, then the loop's bound: refused calls cannot crowd real ones out.
        let priced = calls.filter { granted.contains($0.tool) && $0.error == nil }.prefix(ToolLoop.maximumRounds * ToolLoop.maximumCallsPerRound)
        return Microdollars(priced.reduce(Int64(0)) { $0 + Self.toolFee($1.tool, models).rawValue })
    }

    private func reserve(_ request: BudgetRequest, on id: Int, logger: Logger) -> Bool {
        func refuse(_ code: JobFailureCode, _ message: String) {
            self.dispatcher.tell(id, .budget(BudgetAnswer(job: request.job, attempt: request.attempt, call: request.call, granted: false, code: code.rawValue, message: message)))
        }
        guard let job = self.dispatcher.reserving(id, job: request.job, attempt: request.attempt, call: request.call) else {
            refuse(.budgetUnavailable, "this attempt is not running here, was stopped, or asked for this call already or too many")
            return false
        }
        guard let budget = job.budget else {
            // Sent without a budget: nothing to reserve against (the tenant's budget set since
            // applies from its next claim; what this attempt spends is still charged to it).
            self.dispatcher.tell(id, .budget(BudgetAnswer(job: request.job, attempt: request.attempt, call: request.call, granted: true)))
            return true
        }
        let models = self.settings.tunables.models
        let price = models.model(job.model) ?? models.mostExpensive
        // Never below what we know the call may use: the input as the processor measured it
        // (at least its framing), the output at the field's own limit.
        let bound = CallBound(
            inputTokens: min(max(request.bound.inputTokens, CallBound.tokensPerRequest), CallBound.maximumTokens),
            outputTokens: min(max(request.bound.outputTokens, budget.outputLimit), CallBound.maximumTokens)
        )
        let amount = Microdollars(bound.cost(at: price).rawValue + budget.toolFeesPerCall.rawValue)
        let reservation = JobQueue.Reservation(
            attempt: job.attemptReference, pipeline: job.pipeline, fieldName: job.fieldName, amount: amount, fieldLimit: budget.fieldLimit
        )
        self.reservations.reserve(reservation) { outcome in
            let answer: BudgetAnswer
            switch outcome {
            case .granted?, .unlimited?:
                answer = BudgetAnswer(job: request.job, attempt: request.attempt, call: request.call, granted: true)
            case .exceeded(let scope, let limit, let spent, let reserved)?:
                let which = scope == "tenant" ? "the tenant's monthly budget" : "the field's monthly budget"
                logger.notice("budget has no room for a call; the job fails without calling", metadata: [
                    "job.id": "\(job.id)", "budget.scope": "\(scope)", "budget.limit_micros": "\(limit.rawValue)",
                    "budget.spent_micros": "\(spent.rawValue)", "budget.reserved_micros": "\(reserved.rawValue)", "call.bound_micros": "\(amount.rawValue)",
                ])
                answer = BudgetAnswer(
                    job: request.job, attempt: request.attempt, call: request.call, granted: false, code: JobFailureCode.budgetExceeded.rawValue,
                    message: "\(which) has no room for this call: limit \(limit), spent \(spent), reserved by calls in flight \(reserved), this call up to \(amount); no call was made"
                )
            case .stale?:
                answer = BudgetAnswer(
                    job: request.job, attempt: request.attempt, call: request.call, granted: false, code: JobFailureCode.budgetUnavailable.rawValue,
                    message: "the attempt was no longer held when its call was to be reserved"
                )
            case nil:
                answer = BudgetAnswer(
                    job: request.job, attempt: request.attempt, call: request.call, granted: false, code: JobFailureCode.budgetUnavailable.rawValue,
                    message: "the budget ledger could not be written; no call was made"
                )
            }
            self.dispatcher.tell(id, .budget(answer))
        }
        return true
    }

    /// A result (value and audit, as JSON) larger than this fails its job: `max_tokens` keeps a
    /// real one far below it.
    static let maximumResultBytes = 1 << 20

    struct Unstorable: Error, Equatable {
        let message: String
    }

    /// A result's stored size, or why it cannot be stored: text PostgreSQL refuses (a NUL, in a
    /// string or a key, at any depth) or more bytes than any real result has.
    static func storable(_ completion: JobCompletion) -> Result<Int, Unstorable> {
        if let path = completion.value.pathOfUnstorableText(under: "value") ?? completion.audit.pathOfUnstorableText(under: "audit") {
            return .failure(Unstorable(message: "the result holds text PostgreSQL cannot store (\(path))"))
        }
        let bytes = completion.value.unescapedJSONSize + completion.audit.unescapedJSONSize
        guard bytes <= Self.maximumResultBytes else {
            return .failure(Unstorable(message: "the result is \(bytes) bytes; the limit is \(Self.maximumResultBytes)"))
        }
        return .success(bytes)
    }

    /// The artifacts of a completion that the table takes, checked here as its constraints would
    /// (one bad row would fail the whole batch of every tenant's results): safe unique names, a
    /// plain media type, base64 that decodes, within the count and total size.
    static func storableArtifacts(_ artifacts: [JobArtifact]) -> [JobArtifact] {
        var seen = Set<String>()
        var total = 0
        var kept: [JobArtifact] = []
        for artifact in artifacts.prefix(JobArtifact.maximumCount) {
            guard JobArtifact.isSafeName(artifact.name), seen.insert(artifact.name).inserted, !artifact.mediaType.isEmpty, artifact.mediaType.utf8.count <= 100,
                  artifact.mediaType.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2F || $0 == 0x2B || $0 == 0x2E || $0 == 0x2D }),
                  let bytes = Data(base64Encoded: artifact.data), total + bytes.count <= JobArtifact.maximumTotalBytes else { continue }
            total += bytes.count
            // Encoded again by us: what PostgreSQL decodes is base64 of one canonical form.
            kept.append(JobArtifact(name: artifact.name, mediaType: artifact.mediaType, data: bytes.base64EncodedString()))
        }
        return kept
    }

    /// A job whose order is over the frame cap (its record is too large) fails at once.
    private func refuseOversized(_ order: JobOrder, on id: Int, logger: Logger) async {
        guard let job = self.dispatcher.settle(id, job: order.job, attempt: order.attempt) else { return }
        logger.warning("a job's record is too large to send; the job fails", metadata: ["job.id": "\(order.job)"])
        await self.fail(job, code: "record_too_large", message: "the record is larger than a job frame may carry (frames.queue_message_bytes)", retryAfter: nil)
        self.wake.yield(false)
    }

    private func settled(_ id: Int, _ job: JobID, _ attempt: Int, logger: Logger) -> ClaimedJob? {
        guard let held = self.dispatcher.settle(id, job: job, attempt: attempt) else {
            // Logged once per connection (the dispatcher counts the rest).
            if self.dispatcher.strayCount(id) == 0 {
                logger.warning("report for an attempt this processor does not hold; ignored", metadata: ["job.id": "\(job)", "job.attempt": "\(attempt)"])
            }
            return nil
        }
        self.activity.setHeld(self.dispatcher.heldCount)
        // Room freed: worth a claim only if the tenant may have more due.
        if self.dispatcher.mayHaveWork(held.tenant) { self.wake.yield(false) }
        return held
    }

    /// `unmetered`: a call of the attempt may have been billed for an amount nobody knows, and
    /// it is charged its whole reservation (our own stops, the deadline, say so too).
    private func fail(
        _ job: ClaimedJob, code: String, message: String, retryAfter: Duration?, providerRetries: Int = 0, billed: JobQueue.Billed? = nil, unmetered: Bool = false
    ) async {
        do {
            try await self.queue.fail(
                job.attemptReference, code: code, message: message, retryAfter: retryAfter, providerRetries: providerRetries, billed: billed,
                unmetered: unmetered, logger: self.logger
            )
        } catch {
            self.logger.error("recording a failed attempt failed; its lease will expire", metadata: ["job.id": "\(job.id)", "error": "\(SafeErrorDescription.of(error))"])
        }
    }


    // MARK: Demand, rescue, leases

    private func workQueued(_ payload: String) {
        guard let tenant = TenantID(parsing: payload) else { return }
        if self.dispatcher.isConnected(tenant) {
            self.dispatcher.hint(tenant)
            self.wake.yield(false)
        } else if self.fieldLists.shouldAsk(for: tenant, now: .now) {
            self.tellSupervisor(.need(tenants: [tenant]))
        }
    }

    private func askForProcessors() async {
        do {
            let connected = self.dispatcher.connectedTenants
            let wanted = try await self.queue.tenantsWithDueWork(limit: 10_000, logger: self.logger).filter { !connected.contains($0) }
            var start = 0
            while start < wanted.count {
                let chunk = Array(wanted[start..<min(wanted.count, start + ChildMessage.maximumTenantsPerFrame)])
                self.tellSupervisor(.need(tenants: chunk))
                start += chunk.count
            }
        } catch {
            self.logger.error("looking for tenants with work failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
        }
    }

    /// A processing job was cancelled (its row is final already): its processor aborts the call.
    /// The notification is a hint, never the authority: any role that can log in may NOTIFY, so
    /// the row is read first and a job still processing under our lease is left running.
    private func jobCancelled(_ payload: String) {
        let parts = payload.split(separator: ":")
        guard parts.count == 3, let tenant = TenantID(parsing: String(parts[0])), let job = JobID(parsing: String(parts[1])),
              let attempt = Int(parts[2]) else { return }
        // Only a notification about an attempt held here costs a query, and only a few at once:
        // a flood of made-up ones is dropped (the lease check stops a real cancel anyway).
        guard self.dispatcher.holds(tenant: tenant, job: job, attempt: attempt),
              self.cancelChecks.enter(limit: 16)
        else { return }
        Task {
            defer { self.cancelChecks.leave() }
            do {
                guard try await !self.queue.isProcessing(job, tenant: tenant, logger: self.logger) else {
                    self.logger.warning("a cancel notification for a job still processing was ignored", metadata: ["tenant.id": "\(tenant)", "job.id": "\(job)"])
                    return
                }
            } catch {
                // The lease check (`extendLeases`) stops it later if it really was cancelled.
                self.logger.error("checking a cancelled job failed", metadata: ["job.id": "\(job)", "error": "\(SafeErrorDescription.of(error))"])
                return
            }
            if self.dispatcher.cancel(tenant: tenant, job: job, attempt: attempt) {
                self.logger.info("job cancelled; told its processor to abort the call", metadata: ["tenant.id": "\(tenant)", "job.id": "\(job)"])
            }
        }
    }

    /// Attempts running past `queue.attempt_deadline_ms` are stopped: their processor is told to
    /// abort, and the job goes back to the queue as a retry (`attempt_deadline`). Whatever the
    /// processor reports later changes nothing.
    private func stopOverdueAttempts() async {
        let deadline = ContinuousClock.now - .tunable(milliseconds: self.settings.tunables.queue.attemptDeadlineMilliseconds)
        for job in self.dispatcher.overdue(sentBefore: deadline) {
            self.logger.warning("attempt passed its deadline; cancelled and queued again", metadata: ["job.id": "\(job.id)", "job.attempt": "\(job.attempt)"])
            await self.fail(
                job, code: JobFailureCode.attemptDeadline.rawValue,
                message: "the attempt ran past queue.attempt_deadline_ms and was stopped",
                retryAfter: self.retryPolicy.delay(afterAttempt: job.attempt, providerHintMilliseconds: nil), unmetered: true
            )
        }
    }

    private func rescue() async {
        do {
            let rescued = try await self.queue.release(.expired, logger: self.logger)
            if rescued > 0 {
                self.logger.notice("returned jobs with expired leases", metadata: ["jobs.rescued": "\(rescued)"])
                self.wake.yield(true)
            }
        } catch {
            self.logger.error("rescuing expired leases failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
        }
    }

    private func extendLeases() async {
        do {
            let held = self.dispatcher.held
            let extended = try await self.queue.extendLeases(held, logger: self.logger)
            // A held attempt whose row is no longer processing was cancelled while the cancel
            // NOTIFY was lost (the listener reconnecting): its processor stops it now.
            let stopped = self.dispatcher.stopMissing(from: extended, among: held)
            if stopped > 0 { self.logger.notice("stopped attempts whose jobs were cancelled meanwhile", metadata: ["jobs.stopped": "\(stopped)"]) }
        } catch {
            self.logger.error("extending leases failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
        }
    }

    // MARK: Plumbing

    /// Holds one connection in LISTEN on every channel given, reconnecting after failures (the
    /// polls cover what is missed meanwhile): one connection for all of them, so the pool keeps
    /// the rest for claims and commits.
    private func listen(_ handlers: [String: @Sendable (String) -> Void]) async {
        while !Task.isCancelled {
            do {
                try await self.database.withConnection { connection in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for (channel, handle) in handlers {
                            group.addTask {
                                try await connection.listen(on: channel) { notifications in
                                    for try await notification in notifications { handle(notification.payload) }
                                }
                            }
                        }
                        try await group.next()
                        group.cancelAll()
                    }
                }
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("listener failed; relying on polling until it reconnects", metadata: ["error": "\(SafeErrorDescription.of(error))"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func every(_ interval: Duration, _ body: @Sendable () async -> Void) async {
        while !Task.isCancelled {
            await body()
            try? await Task.sleep(for: interval)
        }
    }
}

/// What the queue manager's heartbeat reports.
public final class QueueActivity: Sendable {
    /// Totals since start: what batching achieves shows as jobs per claim and per commit.
    struct Totals {
        var held = 0
        var committed = 0
        var claims = 0
        var claimed = 0
        var commits = 0
    }

    private let counts = Mutex(Totals())

    public var held: Int { self.counts.withLock { $0.held } }
    public var committed: Int { self.counts.withLock { $0.committed } }

    func setHeld(_ value: Int) { self.counts.withLock { $0.held = value } }
    func add(committed: Int) { self.counts.withLock { $0.committed += committed; $0.commits += 1 } }
    func add(claim jobs: Int) { self.counts.withLock { $0.claims += 1; $0.claimed += jobs } }

    /// One log line's worth: claims and commits, and the jobs each carried on average.
    var summary: Logger.Metadata {
        let totals = self.counts.withLock { $0 }
        return [
            "claims": "\(totals.claims)", "jobs.claimed": "\(totals.claimed)",
            "jobs.per_claim": "\(String(format: "%.2f", Double(totals.claimed) / Double(max(totals.claims, 1))))",
            "commits": "\(totals.commits)", "jobs.committed": "\(totals.committed)",
            "jobs.per_commit": "\(String(format: "%.2f", Double(totals.committed) / Double(max(totals.commits, 1))))",
        ]
    }
}

/// Field lists read from the database, newest per pipeline, and when each tenant without a
/// processor was last asked for.
final class FieldListCache: Sendable {
    private static let capacity = 4096
    private let lists = Mutex<[FieldsKey: PipelineFields]>([:])
    private let asked = Mutex<[TenantID: ContinuousClock.Instant]>([:])

    func get(_ key: FieldsKey) -> PipelineFields? {
        self.lists.withLock { $0[key] }
    }

    func put(_ key: FieldsKey, _ list: PipelineFields) {
        self.lists.withLock { lists in
            if lists.count >= Self.capacity { lists.removeAll(keepingCapacity: true) }
            if (lists[key]?.version ?? -1) <= list.version { lists[key] = list }
        }
    }

    /// Whether to ask the supervisor for this tenant's processor now: once a second at most.
    func shouldAsk(for tenant: TenantID, now: ContinuousClock.Instant) -> Bool {
        self.asked.withLock { asked in
            if let last = asked[tenant], now - last < .seconds(1) { return false }
            if asked.count >= Self.capacity { asked.removeAll(keepingCapacity: true) }
            asked[tenant] = now
            return true
        }
    }
}

/// A count of things under way, admitted up to a limit.
final class InFlight: Sendable {
    private let count = Mutex(0)

    /// Counts one more unless `limit` are under way; whether it was admitted.
    func enter(limit: Int) -> Bool {
        self.count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func leave() {
        self.count.withLock { $0 -= 1 }
    }
}
