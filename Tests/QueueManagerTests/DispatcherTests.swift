@testable import OneoWire
@testable import OneoStore
@testable import QueueManager
import Testing

/// The queue manager's bookkeeping, without I/O: rooms, field lists before jobs, and which
/// reports it accepts.
@Suite("dispatcher")
struct DispatcherTests {
    static func job(_ id: Int64, tenant: Int64, pipeline: Int64 = 1, fieldsVersion: Int64 = 1, attempt: Int = 1) -> ClaimedJob {
        ClaimedJob(
            tenant: TenantID(tenant), id: JobID(id), pipeline: PipelineID(pipeline), record: RecordID(id), fieldName: "summary",
            model: "gpt-4o-mini", storedConfig: AIFieldConfig(prompt: "Hi {name}").jsonValue, attempt: attempt, maxAttempts: 3,
            triggeredBy: nil, recordData: ["name": "Jane"], pipelineName: "Leads", fieldsVersion: fieldsVersion, tenantSensitiveNames: [],
            tenantMonthlyBudget: nil
        )
    }

    static func order(_ job: ClaimedJob) -> (ClaimedJob, JobOrder) {
        (job, job.order(config: AIFieldConfig(prompt: "Hi {name}"), budgeted: false))
    }

    static func drain(_ stream: AsyncStream<QueueMessage>) async -> [QueueMessage] {
        var messages: [QueueMessage] = []
        for await message in stream { messages.append(message) }
        return messages
    }

    @Test("rooms follow concurrency and what is held; a draining processor has none")
    func rooms() {
        let dispatcher = Dispatcher()
        let (_, a) = AsyncStream<QueueMessage>.makeStream()
        let (_, b) = AsyncStream<QueueMessage>.makeStream()
        let first = dispatcher.connect(tenant: TenantID(1), name: "processor:a", concurrency: 3, outbound: a)
        let second = dispatcher.connect(tenant: TenantID(2), name: "processor:b", concurrency: 2, outbound: b)
        #expect(dispatcher.rooms(all: true) == [TenantID(1): 3, TenantID(2): 2])
        let list = PipelineFields(pipeline: PipelineID(1), version: 1, fields: [])
        let unsent = dispatcher.send([Self.order(Self.job(10, tenant: 1)), Self.order(Self.job(11, tenant: 1))], fields: [FieldsKey(tenant: TenantID(1), pipeline: PipelineID(1)): list])
        #expect(unsent.isEmpty)
        #expect(dispatcher.rooms(all: true) == [TenantID(1): 1, TenantID(2): 2])
        dispatcher.markDraining(second)
        #expect(dispatcher.rooms(all: true) == [TenantID(1): 1])
        #expect(Set(dispatcher.held) == [JobID(10), JobID(11)])
        _ = first
    }

    @Test("a pipeline's field list goes before its first job, once per version")
    func fieldListsOnce() async {
        let dispatcher = Dispatcher()
        let (stream, continuation) = AsyncStream<QueueMessage>.makeStream()
        let id = dispatcher.connect(tenant: TenantID(1), name: "processor:a", concurrency: 8, outbound: continuation)
        let key = FieldsKey(tenant: TenantID(1), pipeline: PipelineID(1))
        let v1 = PipelineFields(pipeline: PipelineID(1), version: 1, fields: [])
        let v2 = PipelineFields(pipeline: PipelineID(1), version: 2, fields: [])
        #expect(dispatcher.missingFields(for: [Self.job(1, tenant: 1)]) == [key])
        _ = dispatcher.send([Self.order(Self.job(1, tenant: 1)), Self.order(Self.job(2, tenant: 1))], fields: [key: v1])
        #expect(dispatcher.missingFields(for: [Self.job(3, tenant: 1)]).isEmpty)
        #expect(dispatcher.missingFields(for: [Self.job(3, tenant: 1, fieldsVersion: 2)]) == [key])
        // A job of a newer version than the list at hand is not sent.
        let stale = dispatcher.send([Self.order(Self.job(3, tenant: 1, fieldsVersion: 2))], fields: [key: v1])
        #expect(stale.map(\.id) == [JobID(3)])
        _ = dispatcher.send([Self.order(Self.job(3, tenant: 1, fieldsVersion: 2))], fields: [key: v2])
        _ = dispatcher.disconnect(id)
        let kinds = await Self.drain(stream).map { message -> String in
            switch message {
            case .fields(let list): "fields v\(list.version)"
            case .job(let order): "job \(order.job)"
            case .cancel(let job, let attempt): "cancel \(job)/\(attempt)"
            case .budget(let answer): "budget \(answer.job)"
            }
        }
        #expect(kinds == ["fields v1", "job 1", "job 2", "fields v2", "job 3"])
    }

    @Test("a report settles only an attempt sent on that connection; disconnect returns the rest")
    func settleOnlyOwn() {
        let dispatcher = Dispatcher()
        let (_, a) = AsyncStream<QueueMessage>.makeStream()
        let (_, b) = AsyncStream<QueueMessage>.makeStream()
        let acme = dispatcher.connect(tenant: TenantID(1), name: "processor:acme", concurrency: 4, outbound: a)
        let globex = dispatcher.connect(tenant: TenantID(2), name: "processor:globex", concurrency: 4, outbound: b)
        let lists = [
            FieldsKey(tenant: TenantID(1), pipeline: PipelineID(1)): PipelineFields(pipeline: PipelineID(1), version: 1, fields: []),
            FieldsKey(tenant: TenantID(2), pipeline: PipelineID(1)): PipelineFields(pipeline: PipelineID(1), version: 1, fields: []),
        ]
        _ = dispatcher.send([Self.order(Self.job(1, tenant: 1)), Self.order(Self.job(2, tenant: 1)), Self.order(Self.job(3, tenant: 2))], fields: lists)
        #expect(dispatcher.settle(globex, job: JobID(1), attempt: 1) == nil, "globex cannot settle acme's job")
        #expect(dispatcher.settle(acme, job: JobID(1), attempt: 2) == nil, "a stale attempt is not settled")
        #expect(dispatcher.settle(acme, job: JobID(1), attempt: 1)?.id == JobID(1))
        #expect(dispatcher.settle(acme, job: JobID(1), attempt: 1) == nil, "an attempt settles once")
        #expect(dispatcher.heldCount == 2, "the running count follows sends and settles")
        #expect(dispatcher.disconnect(acme).map(\.id) == [JobID(2)])
        #expect(dispatcher.heldCount == 1)
        #expect(dispatcher.heldCount == dispatcher.held.count)
        #expect(dispatcher.send([Self.order(Self.job(4, tenant: 1))], fields: lists).map(\.id) == [JobID(4)], "no processor: unsent")
        #expect(dispatcher.isConnected(TenantID(2)))
        #expect(!dispatcher.isConnected(TenantID(1)))
    }

    @Test("a newer connection for a tenant takes its place; the older one's end forgets only itself")
    func newerConnectionWins() {
        let dispatcher = Dispatcher()
        let (_, a) = AsyncStream<QueueMessage>.makeStream()
        let (_, b) = AsyncStream<QueueMessage>.makeStream()
        let old = dispatcher.connect(tenant: TenantID(1), name: "processor:acme", concurrency: 2, outbound: a)
        _ = dispatcher.connect(tenant: TenantID(1), name: "processor:acme", concurrency: 5, outbound: b)
        #expect(dispatcher.rooms(all: true) == [TenantID(1): 5])
        _ = dispatcher.disconnect(old)
        #expect(dispatcher.isConnected(TenantID(1)))
        #expect(dispatcher.rooms(all: true) == [TenantID(1): 5])
    }

    @Test("a claim asks only for tenants that may have work: named by a NOTIFY, or whose last claim filled its room")
    func claimsFollowHints() {
        let dispatcher = Dispatcher()
        let (_, a) = AsyncStream<QueueMessage>.makeStream()
        let (_, b) = AsyncStream<QueueMessage>.makeStream()
        _ = dispatcher.connect(tenant: TenantID(1), name: "processor:a", concurrency: 4, outbound: a)
        _ = dispatcher.connect(tenant: TenantID(2), name: "processor:b", concurrency: 4, outbound: b)
        // A new connection may have a backlog.
        #expect(dispatcher.rooms(all: false) == [TenantID(1): 4, TenantID(2): 4])
        // Tenant 1 got less than its room (nothing more due); tenant 2 filled it (maybe more).
        dispatcher.claimed([TenantID(1): 1, TenantID(2): 4], of: [TenantID(1): 4, TenantID(2): 4])
        #expect(!dispatcher.mayHaveWork(TenantID(1)))
        #expect(dispatcher.mayHaveWork(TenantID(2)))
        #expect(Set(dispatcher.rooms(all: false).keys) == [TenantID(2)])
        // A NOTIFY names tenant 1 again; the poll asks for everyone regardless.
        dispatcher.hint(TenantID(1))
        #expect(Set(dispatcher.rooms(all: false).keys) == [TenantID(1), TenantID(2)])
        dispatcher.claimed([:], of: [TenantID(1): 4, TenantID(2): 4])
        #expect(dispatcher.rooms(all: false).isEmpty)
        #expect(Set(dispatcher.rooms(all: true).keys) == [TenantID(1), TenantID(2)])
    }
}

/// What a processor reports is checked before it reaches a shared commit.
@Suite("result checks")
struct ResultCheckTests {
    static func completion(_ value: JSONValue, audit: JSONValue = [:]) -> JobCompletion {
        JobCompletion(job: JobID(1), attempt: 1, value: value, audit: audit, promptTokens: 1, completionTokens: 1, milliseconds: 1)
    }

    @Test("a NUL anywhere in the value or the audit, or a result over 1 MiB, is refused; an ordinary one passes with its size")
    func unstorableResults() {
        if case .success(let bytes) = QueueManagerService.storable(Self.completion("A fine summary.")) {
            #expect(bytes == #""A fine summary.""#.utf8.count + 2, "the value's JSON and the empty audit's {}")
        } else {
            Issue.record("an ordinary result was refused")
        }
        let nul = "a\u{0}b"
        for bad in [Self.completion(.string(nul)), Self.completion(["nested": [.string(nul)]]), Self.completion("ok", audit: [nul: 1])] {
            guard case .failure(let problem) = QueueManagerService.storable(bad) else {
                Issue.record("a NUL passed")
                continue
            }
            #expect(problem.message.contains("cannot store"))
        }
        let huge = Self.completion(.string(String(repeating: "x", count: (1 << 20) + 1)))
        guard case .failure(let problem) = QueueManagerService.storable(huge) else {
            Issue.record("an oversized result passed")
            return
        }
        #expect(problem.message.contains("limit"))
    }
}

@Suite("dispatcher: results waiting for their commit")
struct CommitRoomTests {
    @Test("up to concurrency results may wait for the commit freely; past that they take the room")
    func waitingResultsTakeRoomPastConcurrency() {
        let dispatcher = Dispatcher()
        let (_, stream) = AsyncStream<QueueMessage>.makeStream()
        let id = dispatcher.connect(tenant: TenantID(1), name: "processor:a", concurrency: 2, outbound: stream)
        for _ in 0..<2 { dispatcher.awaitingCommit(id) }
        #expect(dispatcher.rooms(all: true) == [TenantID(1): 2])
        dispatcher.awaitingCommit(id)
        #expect(dispatcher.rooms(all: true) == [TenantID(1): 1])
        dispatcher.awaitingCommit(id)
        #expect(dispatcher.rooms(all: true).isEmpty)
        dispatcher.committed(id)
        #expect(dispatcher.rooms(all: true) == [TenantID(1): 1])
    }

    @Test("a cancel goes to the processor holding that attempt; a stopped attempt's job is not sent again until it reports; deadlines and missed cancels stop attempts once")
    func cancelsAndDeadlines() async {
        let dispatcher = Dispatcher()
        let (stream, continuation) = AsyncStream<QueueMessage>.makeStream()
        let id = dispatcher.connect(tenant: TenantID(1), name: "processor:a", concurrency: 8, outbound: continuation)
        let list = PipelineFields(pipeline: PipelineID(1), version: 1, fields: [])
        let key = FieldsKey(tenant: TenantID(1), pipeline: PipelineID(1))
        _ = dispatcher.send([DispatcherTests.order(DispatcherTests.job(1, tenant: 1)), DispatcherTests.order(DispatcherTests.job(2, tenant: 1)), DispatcherTests.order(DispatcherTests.job(3, tenant: 1))], fields: [key: list])
        // Another tenant's cancel, or a stale attempt's, reaches nobody.
        #expect(!dispatcher.cancel(tenant: TenantID(2), job: JobID(1), attempt: 1))
        #expect(!dispatcher.cancel(tenant: TenantID(1), job: JobID(1), attempt: 7))
        #expect(dispatcher.cancel(tenant: TenantID(1), job: JobID(1), attempt: 1))
        #expect(dispatcher.isStopping(id, job: JobID(1)))
        #expect(!dispatcher.held.contains(JobID(1)), "a stopped attempt's lease is not extended")
        // Its next attempt waits until the stopped one reports.
        #expect(dispatcher.send([DispatcherTests.order(DispatcherTests.job(1, tenant: 1, attempt: 2))], fields: [key: list]).map(\.id) == [JobID(1)])
        #expect(dispatcher.settle(id, job: JobID(1), attempt: 1) != nil)
        #expect(dispatcher.send([DispatcherTests.order(DispatcherTests.job(1, tenant: 1, attempt: 2))], fields: [key: list]).isEmpty)
        // Past the deadline: stopped once, returned once.
        #expect(Set(dispatcher.overdue(sentBefore: .now + .seconds(1)).map(\.id)) == [JobID(1), JobID(2), JobID(3)])
        #expect(dispatcher.overdue(sentBefore: .now + .seconds(1)).isEmpty)
        // A row that moved on unseen (the NOTIFY was lost) is stopped by the lease pass.
        let other = dispatcher.connect(tenant: TenantID(2), name: "processor:b", concurrency: 8, outbound: AsyncStream<QueueMessage>.makeStream().1)
        _ = dispatcher.send([DispatcherTests.order(DispatcherTests.job(9, tenant: 2))], fields: [FieldsKey(tenant: TenantID(2), pipeline: PipelineID(1)): list])
        #expect(dispatcher.stopMissing(from: [], among: [JobID(9)]) == 1)
        #expect(dispatcher.stopMissing(from: [], among: [JobID(9)]) == 0)
        _ = other
        _ = dispatcher.disconnect(id)
        let cancels = await DispatcherTests.drain(stream).compactMap { message -> String? in
            if case .cancel(let job, let attempt) = message { return "\(job)/\(attempt)" }
            return nil
        }
        #expect(cancels.sorted() == ["1/1", "1/2", "2/1", "3/1"])
    }

    @Test("a processor's text is kept without control or format characters, cut to its limit")
    func boundedText() {
        let text = "bad\u{1B}[31m key\u{9B}2J \u{202E}desrever\u{200B}" + String(repeating: "x", count: 1_000)
        let kept = PlainText.bounded(text, 100)
        #expect(kept.unicodeScalars.count == 100)
        #expect(!kept.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x9B || $0.value == 0x202E || $0.value == 0x200B })
        #expect(kept.hasPrefix("bad[31m key2J desrever"))
    }
}
