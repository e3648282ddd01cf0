import OneoWire
import QueueManager
import Testing

@Suite("retry policy: exponential backoff with full jitter")
struct RetryPolicyTests {
    static func policy(first: Int = 60_000, maximum: Int = 3_600_000) -> RetryPolicy {
        var tunables = EngineTunables()
        tunables.queue.retryDelayMilliseconds = first
        tunables.queue.retryDelayMaxMilliseconds = maximum
        return RetryPolicy(tunables: tunables.queue)
    }

    @Test("the ceiling doubles per attempt from RETRY_DELAY and stops at the maximum, without overflow")
    func ceilings() {
        let policy = Self.policy()
        #expect(policy.ceilingMilliseconds(afterAttempt: 1) == 60_000)
        #expect(policy.ceilingMilliseconds(afterAttempt: 2) == 120_000)
        #expect(policy.ceilingMilliseconds(afterAttempt: 3) == 240_000)
        #expect(policy.ceilingMilliseconds(afterAttempt: 8) == 3_600_000)
        #expect(policy.ceilingMilliseconds(afterAttempt: 1_000) == 3_600_000)
        #expect(Self.policy(first: 0).ceilingMilliseconds(afterAttempt: 5) == 0)
    }

    @Test("each delay is drawn from 0 up to the ceiling, and spread across it; never before the provider's Retry-After")
    func delays() {
        let policy = Self.policy(first: 1_000)
        let drawn = (0..<400).map { _ in policy.delay(afterAttempt: 2, providerHintMilliseconds: nil) / .milliseconds(1) }
        #expect(drawn.allSatisfy { (0...2_000).contains($0) })
        // Full jitter: both halves of the range are used (400 draws: all in one half has odds 2⁻⁴⁰⁰).
        #expect(drawn.contains { $0 < 1_000 } && drawn.contains { $0 >= 1_000 })
        #expect((0..<50).allSatisfy { _ in policy.delay(afterAttempt: 1, providerHintMilliseconds: 30_000) == .seconds(30) })
        // An absurd hint is held to an hour.
        #expect(policy.delay(afterAttempt: 1, providerHintMilliseconds: .max) == .seconds(3_600))
        #expect(policy.delay(afterAttempt: 1, providerHintMilliseconds: -5) <= .seconds(1))
    }
}
