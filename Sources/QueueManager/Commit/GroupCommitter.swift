import Logging
import OneoWire
import OneoStore
import Synchronization

/// Group commit for finished attempts of every tenant: each report hands its result here and one
/// loop commits whatever has gathered in a single transaction. Under load results gather while
/// the previous commit is in flight, so commits per job fall without any added delay; alone, a
/// result commits at once. Commits, not CPU, bound a job's cost, which is why this exists.
final class GroupCommitter: Sendable {
    /// Enough to amortise a commit; small enough that one transaction stays short.
    static let maximumBatch = 256

    private let queue: JobQueue
    private let logger: Logger
    private let waiting = Mutex<[JobQueue.Finished]>([])
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// Told, after each batch, how many were committed and how many had lost their lease.
    private let committed: @Sendable (_ committed: Int, _ fencedOut: Int) -> Void

    init(queue: JobQueue, logger: Logger, committed: @escaping @Sendable (Int, Int) -> Void) {
        self.queue = queue
        self.logger = logger
        self.committed = committed
        (self.wakeups, self.wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func submit(_ finished: JobQueue.Finished) {
        self.waiting.withLock { $0.append(finished) }
        self.wake.yield()
    }

    /// Runs until cancelled; results submitted before cancellation are still committed.
    func run() async {
        for await _ in self.wakeups {
            await self.flush()
        }
        await self.flush()
    }

    private func flush() async {
        while true {
            let batch = self.waiting.withLock { waiting -> [JobQueue.Finished] in
                let taken = Array(waiting.prefix(Self.maximumBatch))
                waiting.removeFirst(taken.count)
                return taken
            }
            guard !batch.isEmpty else { return }
            do {
                let held = try await self.queue.complete(batch, logger: self.logger)
                let lost = batch.filter { !held.contains($0.job.id) }
                for finished in lost {
                    self.logger.warning("lease lost before commit; result discarded", metadata: ["job.id": "\(finished.job.id)", "job.attempt": "\(finished.job.attempt)"])
                }
                self.committed(held.count, lost.count)
            } catch {
                // Released for retry now if the database lets us; else their leases, no longer
                // extended, run out and the rescuer returns them.
                self.logger.error("committing results failed; their jobs will be retried", metadata: [
                    "batch.size": "\(batch.count)", "error": "\(SafeErrorDescription.of(error))",
                ])
                _ = try? await self.queue.release(.attempts(batch.map(\.attempt)), logger: self.logger)
            }
        }
    }
}
