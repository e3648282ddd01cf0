import Logging
import OneoCore
import Synchronization

/// Group commit for finished jobs: each job hands its result here and waits; one loop commits
/// whatever has gathered in a single transaction. Under load, results gather while the previous
/// commit is in flight, so commits per job fall without any added delay; alone, a job commits at
/// once. Commits, not CPU, bound a job's cost, which is why this exists.
final class ResultCommitter: Sendable {
    private struct Waiting {
        let job: ClaimedJob
        let result: JobResult
        let reply: CheckedContinuation<Bool, any Error>
    }

    /// Enough to amortise a commit; small enough that one transaction stays short.
    static let maximumBatch = 64

    private let store: JobStore
    private let logger: Logger
    private let queue = Mutex<[Waiting]>([])
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(store: JobStore, logger: Logger) {
        self.store = store
        self.logger = logger
        (self.wakeups, self.wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Returns whether the job was committed (false: its lease was lost and nothing was written).
    func commit(_ job: ClaimedJob, _ result: JobResult) async throws -> Bool {
        try await withCheckedThrowingContinuation { reply in
            self.queue.withLock { $0.append(Waiting(job: job, result: result, reply: reply)) }
            self.wake.yield()
        }
    }

    /// Runs until cancelled; results queued before cancellation are still committed.
    func run() async {
        for await _ in self.wakeups {
            await self.flush()
        }
        await self.flush()
    }

    private func flush() async {
        while true {
            let batch = self.queue.withLock { queue -> [Waiting] in
                let taken = Array(queue.prefix(Self.maximumBatch))
                queue.removeFirst(taken.count)
                return taken
            }
            guard !batch.isEmpty else { return }
            do {
                let committed = try await self.store.complete(batch.map { ($0.job, $0.result) }, logger: self.logger)
                for (waiting, held) in zip(batch, committed) { waiting.reply.resume(returning: held) }
                self.logger.trace("committed results", metadata: ["batch.size": "\(batch.count)"])
            } catch {
                for waiting in batch { waiting.reply.resume(throwing: error) }
            }
        }
    }
}
