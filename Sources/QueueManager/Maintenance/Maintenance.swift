import Logging
import OneoWire
import OneoStore
import PostgresNIO

/// The queue manager's schedule for `JobMaintenance`: every `maintenance.interval_ms`, finished
/// jobs older than `maintenance.cleanup_after_days` go, and failed jobs whose last error was
/// transient are queued again (each at most `maintenance.retry_failed_times` times).
struct Maintenance: Sendable {
    let jobs: JobMaintenance
    let tunables: EngineTunables
    let logger: Logger

    init(database: PostgresClient, tunables: EngineTunables, logger: Logger) {
        self.jobs = JobMaintenance(database: database)
        self.tunables = tunables
        self.logger = logger
    }

    func run() async {
        let interval = self.tunables.maintenance.intervalMilliseconds
        guard interval > 0 else { return }
        while !Task.isCancelled {
            // The first run waits one interval: a restart loop does not become a cleanup loop.
            do { try await Task.sleep(for: .tunable(milliseconds: interval)) } catch { return }
            await self.once()
        }
    }

    func once() async {
        let settings = self.tunables.maintenance
        if settings.cleanupAfterDays > 0 {
            do {
                let deleted = try await self.jobs.cleanup(olderThanDays: settings.cleanupAfterDays, logger: self.logger)
                self.logger.notice("maintenance: deleted finished jobs", metadata: ["jobs.deleted": "\(deleted)", "older_than_days": "\(settings.cleanupAfterDays)"])
            } catch {
                self.logger.error("maintenance: cleanup failed; it runs again next interval", metadata: ["error": "\(SafeErrorDescription.of(error))"])
            }
        }
        if settings.retryFailedTimes > 0 {
            var filter = JobMaintenance.Filter(statuses: [.failed])
            filter.onlyRetryable = true
            filter.requeuedFewerThan = settings.retryFailedTimes
            do {
                let queued = try await self.jobs.requeue(matching: filter, attempts: self.tunables.queue.maxRetries + 1, logger: self.logger)
                self.logger.notice("maintenance: queued failed jobs again", metadata: ["jobs.requeued": "\(queued)"])
            } catch {
                self.logger.error("maintenance: re-queueing failed jobs failed; it runs again next interval", metadata: ["error": "\(SafeErrorDescription.of(error))"])
            }
        }
    }
}
