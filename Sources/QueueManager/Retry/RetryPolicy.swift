public import OneoWire

/// When a job that failed with a transient error runs again: exponential backoff with full
/// jitter from `queue.retry_delay_ms` (the reference's `RETRY_DELAY`), never sooner than the
/// provider's own `Retry-After`. Whether attempts remain is the SQL's rule (`max_attempts`).
public struct RetryPolicy: Sendable {
    public let firstDelayMilliseconds: Int
    public let maximumDelayMilliseconds: Int

    public init(tunables: EngineTunables.Queue) {
        self.firstDelayMilliseconds = tunables.retryDelayMilliseconds
        self.maximumDelayMilliseconds = max(tunables.retryDelayMaxMilliseconds, 0)
    }

    /// The ceiling for retry number `attempt` (the attempt that just failed, from 1): the first
    /// delay doubled per attempt, capped.
    public func ceilingMilliseconds(afterAttempt attempt: Int) -> Int {
        let doublings = min(max(attempt - 1, 0), 30)
        let (grown, overflow) = self.firstDelayMilliseconds.multipliedReportingOverflow(by: 1 << doublings)
        return min(overflow ? Int.max : grown, self.maximumDelayMilliseconds)
    }

    /// A delay drawn uniformly from 0 up to the ceiling (full jitter: jobs that failed together
    /// spread out instead of failing together again), raised to the provider's hint (an hour at
    /// most, as the processor already bounds it).
    public func delay(afterAttempt attempt: Int, providerHintMilliseconds hint: Int?) -> Duration {
        let drawn = Backoff.fullJitter(upTo: .milliseconds(Int64(self.ceilingMilliseconds(afterAttempt: attempt))))
        let floor = Duration.milliseconds(Int64(min(max(hint ?? 0, 0), 3_600_000)))
        return max(drawn, floor)
    }
}
