import OneoWire
import OneoStore
import Synchronization

/// Which processors are connected, what each holds, and how much room each has: the queue
/// manager's one piece of shared state. Every report is checked against it, so a processor can
/// settle only an attempt that was sent to it, on its own socket.
final class Dispatcher: Sendable {
    struct Connection {
        let id: Int
        let tenant: TenantID
        let name: String
        let concurrency: Int
        let outbound: AsyncStream<QueueMessage>.Continuation
        var held: [JobID: ClaimedJob] = [:]
        /// When each held attempt was sent: past the attempt deadline it is cancelled.
        var sentAt: [JobID: ContinuousClock.Instant] = [:]
        /// Held attempts told to stop (cancelled, or past their deadline): their rows have moved
        /// on, their leases are not extended, and their reports only free the room.
        var stopping: Set<JobID> = []
        var draining = false
        /// Reports that matched nothing this connection holds.
        var strayReports = 0
        /// The newest field-list version sent, per pipeline.
        var sentFields: [PipelineID: Int64] = [:]
        /// The calls reserved for, per held attempt: each call number once, and a few in all, so
        /// a broken processor cannot turn one attempt into a stream of ledger writes.
        var reservations: [JobID: Set<Int>] = [:]

        /// Results reported but not yet committed. Up to `concurrency` of them wait freely (a
        /// steady processor never waits on the group commit); past that they count against the
        /// room, so one that reports faster than results commit gets no more work and the commit
        /// queue stays bounded: at most 2 × concurrency results per processor.
        var committing = 0

        var room: Int {
            self.draining ? 0 : max(0, self.concurrency - self.held.count - max(0, self.committing - self.concurrency))
        }
    }

    private struct State {
        var connections: [Int: Connection] = [:]
        var byTenant: [TenantID: Int] = [:]
        var nextID = 1
        /// Tenants that may have due work: a NOTIFY named them, or their last claim filled its
        /// room. A claim asks only for these (the poll asks for every tenant), so a report
        /// that frees room does not cost an empty claim, which is a commit like any other.
        var mayHaveWork: Set<TenantID> = []
        /// Attempts held by all connections, kept as they change (read on every report and
        /// wake-up: no walk over every connection's jobs on the hot path).
        var heldCount = 0
    }

    private let state = Mutex(State())

    /// Registers a processor's connection; a newer one for the same tenant takes its place.
    func connect(tenant: TenantID, name: String, concurrency: Int, outbound: AsyncStream<QueueMessage>.Continuation) -> Int {
        self.state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.connections[id] = Connection(id: id, tenant: tenant, name: name, concurrency: concurrency, outbound: outbound)
            state.byTenant[tenant] = id
            state.mayHaveWork.insert(tenant)
            return id
        }
    }

    /// Forgets a connection and returns the attempts it still held (to be released).
    func disconnect(_ id: Int) -> [ClaimedJob] {
        self.state.withLock { state in
            guard let connection = state.connections.removeValue(forKey: id) else { return [] }
            if state.byTenant[connection.tenant] == id { state.byTenant[connection.tenant] = nil }
            connection.outbound.finish()
            state.heldCount -= connection.held.count
            return Array(connection.held.values)
        }
    }

    func isConnected(_ tenant: TenantID) -> Bool {
        self.state.withLock { $0.byTenant[tenant] != nil }
    }

    var connectedTenants: Set<TenantID> {
        self.state.withLock { Set($0.byTenant.keys) }
    }

    /// Jobs each connected tenant's processor can take now: of the tenants that may have work,
    /// or of every tenant (`all`, at a poll).
    func rooms(all: Bool) -> [TenantID: Int] {
        self.state.withLock { state in
            var rooms: [TenantID: Int] = [:]
            for (tenant, id) in state.byTenant where all || state.mayHaveWork.contains(tenant) {
                if let room = state.connections[id]?.room, room > 0 { rooms[tenant] = room }
            }
            return rooms
        }
    }

    /// A NOTIFY (or a new connection) says the tenant may have due work.
    func hint(_ tenant: TenantID) {
        self.state.withLock { _ = $0.mayHaveWork.insert(tenant) }
    }

    /// After a claim: a tenant that got less than its room has nothing more due (until the
    /// next NOTIFY); one that filled it may have more.
    func claimed(_ counts: [TenantID: Int], of rooms: [TenantID: Int]) {
        self.state.withLock { state in
            for (tenant, room) in rooms {
                if (counts[tenant] ?? 0) < room { state.mayHaveWork.remove(tenant) } else { state.mayHaveWork.insert(tenant) }
            }
        }
    }

    /// Whether a claim for this tenant could find something: the claim loop is woken for it.
    func mayHaveWork(_ tenant: TenantID) -> Bool {
        self.state.withLock { $0.mayHaveWork.contains(tenant) }
    }

    /// The pipelines whose field lists must be sent before these jobs: (tenant, pipeline) pairs
    /// whose processor holds no list as new as the job's.
    func missingFields(for jobs: [ClaimedJob]) -> Set<FieldsKey> {
        self.state.withLock { state in
            var missing = Set<FieldsKey>()
            for job in jobs {
                guard job.workflow == nil, let id = state.byTenant[job.tenant], let connection = state.connections[id] else { continue }
                if (connection.sentFields[job.pipeline] ?? -1) < job.fieldsVersion {
                    missing.insert(FieldsKey(tenant: job.tenant, pipeline: job.pipeline))
                }
            }
            return missing
        }
    }

    /// Hands each job to its tenant's processor (after the field list it needs, when that was not
    /// sent yet). Returns the jobs whose processor is gone or full, which were never sent.
    func send(_ jobs: [(ClaimedJob, JobOrder)], fields: [FieldsKey: PipelineFields]) -> [ClaimedJob] {
        self.state.withLock { state in
            var unsent: [ClaimedJob] = []
            for (job, order) in jobs {
                // Not while an earlier attempt of the same job is still held there (told to stop,
                // not yet reported): one job, one attempt in a processor at a time.
                guard let id = state.byTenant[job.tenant], var connection = state.connections[id], connection.room > 0,
                      connection.held[job.id] == nil else {
                    unsent.append(job)
                    continue
                }
                // A workflow node's job names no pipeline: its prompt sees only its own context.
                if job.workflow == nil, (connection.sentFields[job.pipeline] ?? -1) < job.fieldsVersion {
                    guard let list = fields[FieldsKey(tenant: job.tenant, pipeline: job.pipeline)], list.version >= job.fieldsVersion else {
                        unsent.append(job)
                        continue
                    }
                    connection.outbound.yield(.fields(list))
                    connection.sentFields[job.pipeline] = list.version
                }
                if connection.held.updateValue(job, forKey: job.id) == nil { state.heldCount += 1 }
                connection.sentAt[job.id] = .now
                connection.stopping.remove(job.id)
                connection.outbound.yield(.job(order))
                state.connections[id] = connection
            }
            return unsent
        }
    }

    /// The attempt a report on connection `id` answers, removed from what it holds; nil when
    /// that connection was not sent this attempt (a stale or forged report).
    func settle(_ id: Int, job: JobID, attempt: Int) -> ClaimedJob? {
        self.state.withLock { state in
            guard let held = state.connections[id]?.held[job], held.attempt == attempt else { return nil }
            state.connections[id]?.held[job] = nil
            state.connections[id]?.sentAt[job] = nil
            state.connections[id]?.stopping.remove(job)
            state.connections[id]?.reservations[job] = nil
            state.heldCount -= 1
            return held
        }
    }

    /// Calls one attempt may reserve: its first call and a typed output's repair (the tool loop
    /// will raise this by its rounds).
    static let maximumReservationsPerAttempt = ToolLoop.maximumProviderCalls

    /// The attempt a `reserve` on connection `id` is for, when that connection holds it, it was
    /// not told to stop, and this call number is new and within the limit; nil otherwise (the
    /// call is refused).
    func reserving(_ id: Int, job: JobID, attempt: Int, call: Int) -> ClaimedJob? {
        self.state.withLock { state in
            guard let connection = state.connections[id], let held = connection.held[job], held.attempt == attempt,
                  !connection.stopping.contains(job), (1...Self.maximumReservationsPerAttempt).contains(call),
                  !(connection.reservations[job]?.contains(call) ?? false) else { return nil }
            state.connections[id]?.reservations[job, default: []].insert(call)
            return held
        }
    }

    /// Sends a message on connection `id`, if it is still there.
    func tell(_ id: Int, _ message: QueueMessage) {
        self.state.withLock { state in _ = state.connections[id]?.outbound.yield(message) }
    }

    /// A completed attempt's result now waits for its commit: it keeps its place in the room.
    func awaitingCommit(_ id: Int) {
        self.state.withLock { $0.connections[id]?.committing += 1 }
    }

    /// That result was committed (or given up). Returns whether that freed room for a tenant
    /// that may have work (only then is a claim worth waking for).
    @discardableResult
    func committed(_ id: Int) -> Bool {
        self.state.withLock { state in
            guard let connection = state.connections[id], connection.committing > 0 else { return false }
            let freedRoom = connection.committing > connection.concurrency
            state.connections[id]?.committing = connection.committing - 1
            return freedRoom && state.mayHaveWork.contains(connection.tenant)
        }
    }

    /// Counts a report that matched nothing; false once a connection has sent too many (it is
    /// then closed: a real processor sends at most a few, racing a release).
    func strayReport(_ id: Int) -> Bool {
        self.state.withLock { state in
            state.connections[id]?.strayReports += 1
            return (state.connections[id]?.strayReports ?? 0) <= Self.maximumStrayReports
        }
    }

    func strayCount(_ id: Int) -> Int {
        self.state.withLock { $0.connections[id]?.strayReports ?? 0 }
    }

    static let maximumStrayReports = 100

    func markDraining(_ id: Int) {
        self.state.withLock { $0.connections[id]?.draining = true }
    }

    /// How many attempts processors hold now.
    var heldCount: Int {
        self.state.withLock { $0.heldCount }
    }

    /// Every attempt a processor is working on: their leases are extended (every quarter lease).
    var held: [JobID] {
        self.state.withLock { state in
            state.connections.values.flatMap { connection in connection.held.keys.filter { !connection.stopping.contains($0) } }
        }
    }

    /// Held attempts (not already told to stop) whose job ids are not in `current`: their rows
    /// moved on (cancelled, and the NOTIFY was missed). Each is told to stop now.
    func stopMissing(from current: Set<JobID>, among asked: [JobID]) -> Int {
        let asked = Set(asked)
        return self.state.withLock { state in
            var stopped = 0
            for (id, connection) in state.connections {
                for (job, held) in connection.held where asked.contains(job) && !current.contains(job) && !connection.stopping.contains(job) {
                    state.connections[id]?.stopping.insert(job)
                    connection.outbound.yield(.cancel(job: job, attempt: held.attempt))
                    stopped += 1
                }
            }
            return stopped
        }
    }

    /// Whether a processor holds this attempt of the tenant's job here (and was not told to stop).
    func holds(tenant: TenantID, job: JobID, attempt: Int) -> Bool {
        self.state.withLock { state in
            guard let id = state.byTenant[tenant], let held = state.connections[id]?.held[job] else { return false }
            return held.attempt == attempt && !(state.connections[id]?.stopping.contains(job) ?? true)
        }
    }

    /// Tells the processor holding this attempt of the tenant's job to stop it; false when no
    /// processor holds it here.
    func cancel(tenant: TenantID, job: JobID, attempt: Int) -> Bool {
        self.state.withLock { state in
            guard let id = state.byTenant[tenant], let held = state.connections[id]?.held[job], held.attempt == attempt else { return false }
            state.connections[id]?.stopping.insert(job)
            state.connections[id]?.outbound.yield(.cancel(job: job, attempt: attempt))
            return true
        }
    }

    /// Whether a held attempt was told to stop (its report then only frees the room).
    func isStopping(_ id: Int, job: JobID) -> Bool {
        self.state.withLock { $0.connections[id]?.stopping.contains(job) ?? false }
    }

    /// Attempts sent before `deadline` and not yet told to stop: each is told now, and returned
    /// so that its row goes back to the queue.
    func overdue(sentBefore deadline: ContinuousClock.Instant) -> [ClaimedJob] {
        self.state.withLock { state in
            var late: [ClaimedJob] = []
            for (id, connection) in state.connections {
                for (job, sent) in connection.sentAt where sent < deadline && !connection.stopping.contains(job) {
                    guard let held = connection.held[job] else { continue }
                    state.connections[id]?.stopping.insert(job)
                    connection.outbound.yield(.cancel(job: job, attempt: held.attempt))
                    late.append(held)
                }
            }
            return late
        }
    }
}

/// A tenant's pipeline, as the field-list cache names it.
struct FieldsKey: Hashable, Sendable {
    let tenant: TenantID
    let pipeline: PipelineID
}
