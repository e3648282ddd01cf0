/// Waits before trying again, written once for the processor's in-place retries and the queue
/// manager's retries through the queue.
public enum Backoff {
    /// A wait drawn uniformly from 0 up to `ceiling` (full jitter: retries of many jobs that
    /// failed together spread out instead of arriving together again).
    public static func fullJitter(upTo ceiling: Duration) -> Duration {
        let milliseconds = max(0, Int64(ceiling / .milliseconds(1)))
        return .milliseconds(Int64.random(in: 0...milliseconds))
    }
}
