import Logging
import OneoWire
import OneoStore
import Synchronization

/// Group commit for the ledger writes of every tenant: finished attempts (results, usage, budget
/// charges) or budget reservations. Each report hands its write here and one loop commits
/// whatever has gathered in a single statement. Under load writes gather while the previous
/// commit is in flight, so commits per job fall without any added delay; alone, a write commits
/// at once. Commits, not CPU, bound a job's cost, which is why this exists. The queue manager
/// runs one for results and one for reservations: a reservation never waits behind a batch of
/// results (it is on every budgeted call's path), and each transaction locks jobs, then periods,
/// each in id order, so the two never wait on each other in a circle.
final class GroupCommitter: Sendable {
    /// Enough to amortise a commit; small enough that one transaction stays short.
    private let maximumBatch: Int
    /// How long a small batch waits for more under load (`queue.commit_window_ms`).
    private let window: Duration
    /// When the last commit ended: one a moment ago means results are arriving steadily.
    private let lastCommit = Mutex<ContinuousClock.Instant?>(nil)

    private let queue: JobQueue
    private let logger: Logger
    private let waiting = Mutex<[(finished: JobQueue.Finished, bytes: Int, done: @Sendable () -> Void)]>([])
    /// Reservations waiting, each with whom to tell the outcome (nil: the ledger could not be written).
    private let reservations = Mutex<[(request: JobQueue.Reservation, answer: @Sendable (JobQueue.ReservationOutcome?) -> Void)]>([])
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// Told, after each batch, how many were committed and how many had lost their lease.
    private let committed: @Sendable (_ committed: Int, _ fencedOut: Int) -> Void

    init(queue: JobQueue, maximumBatch: Int, window: Duration, logger: Logger, committed: @escaping @Sendable (Int, Int) -> Void) {
        self.queue = queue
        self.maximumBatch = maximumBatch
        self.window = window
        self.logger = logger
        self.committed = committed
        (self.wakeups, self.wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// A batch's JSON stays under this many bytes, whatever the count: one transaction's
    /// parameter stays small.
    static let maximumBatchBytes = 8 << 20

    /// Queues a finished attempt; `bytes` is its stored size (value and audit), already checked
    /// against the per-result cap.
    /// `done` runs once the result is committed or given up.
    func submit(_ finished: JobQueue.Finished, bytes: Int, done: @escaping @Sendable () -> Void) {
        self.waiting.withLock { $0.append((finished, bytes, done)) }
        self.wake.yield()
    }

    /// Queues a reservation; `answer` runs once it is committed (or could not be: nil).
    func reserve(_ request: JobQueue.Reservation, answer: @escaping @Sendable (JobQueue.ReservationOutcome?) -> Void) {
        self.reservations.withLock { $0.append((request, answer)) }
        self.wake.yield()
    }

    /// Runs until cancelled; results submitted before cancellation are still committed.
    func run() async {
        for await _ in self.wakeups {
            await self.gather()
            await self.flush()
        }
        await self.flush()
    }

    /// Under load (a commit ended within the last 20 ms), a batch smaller than 16 waits one
    /// window for more results: commits, not CPU, bound the rate, and each costs an fsync.
    /// Idle, a result commits at once.
    private func gather() async {
        guard self.window > .zero, let last = self.lastCommit.withLock({ $0 }), ContinuousClock.now - last < .milliseconds(20),
              self.waiting.withLock({ $0.count }) + self.reservations.withLock({ $0.count }) < 16 else { return }
        try? await Task.sleep(for: self.window)
    }

    /// Commits results, then reservations, each kind in one statement (a committer is given one
    /// kind), and answers the reservations once they are durable.
    private func commit(_ batch: [JobQueue.Finished], reservations: [JobQueue.Reservation] = []) async throws -> [JobQueue.ReservationOutcome] {
        let held = batch.isEmpty ? [] : try await self.queue.complete(batch, logger: self.logger)
        let outcomes = reservations.isEmpty ? [] : try await self.queue.reserve(reservations, logger: self.logger)
        self.lastCommit.withLock { $0 = .now }
        if !batch.isEmpty {
            let lost = batch.filter { !held.contains($0.job.id) }
            for finished in lost {
                self.logger.warning("lease lost before commit; result discarded", metadata: ["job.id": "\(finished.job.id)", "job.attempt": "\(finished.job.attempt)"])
            }
            self.committed(held.count, lost.count)
        }
        return outcomes
    }

    private func flush() async {
        while true {
            let taken = self.waiting.withLock { waiting -> [(finished: JobQueue.Finished, bytes: Int, done: @Sendable () -> Void)] in
                var count = 0
                var bytes = 0
                while count < waiting.count, count < self.maximumBatch, count == 0 || bytes + waiting[count].bytes <= Self.maximumBatchBytes {
                    bytes += waiting[count].bytes
                    count += 1
                }
                let taken = Array(waiting.prefix(count))
                waiting.removeFirst(count)
                return taken
            }
            let asked = self.reservations.withLock { waiting in
                let taken = Array(waiting.prefix(self.maximumBatch))
                waiting.removeFirst(taken.count)
                return taken
            }
            guard !taken.isEmpty || !asked.isEmpty else { return }
            defer { for item in taken { item.done() } }
            let batch = taken.map(\.finished)
            do {
                let outcomes = try await self.commit(batch, reservations: asked.map(\.request))
                for (item, outcome) in zip(asked, outcomes) { item.answer(outcome) }
            } catch {
                // One bad row must not cost the others their results: commit them one by one,
                // so that only the attempt at fault is released.
                self.logger.error("committing a batch failed; committing its writes one by one", metadata: [
                    "batch.size": "\(batch.count)", "reservations": "\(asked.count)", "error": "\(SafeErrorDescription.of(error))",
                ])
                for finished in batch {
                    do {
                        _ = try await self.commit([finished])
                    } catch {
                        // Released for retry now if the database lets us; else its lease, no
                        // longer extended, runs out and the rescuer returns it.
                        self.logger.error("committing a result failed; its job will be retried", metadata: [
                            "job.id": "\(finished.job.id)", "error": "\(SafeErrorDescription.of(error))",
                        ])
                        _ = try? await self.queue.release(.attempts([finished.attempt]), logger: self.logger)
                    }
                }
                for item in asked {
                    // A reservation that cannot be written is refused: no call without one.
                    let outcome = try? await self.commit([], reservations: [item.request]).first
                    item.answer(outcome)
                }
            }
        }
    }
}
