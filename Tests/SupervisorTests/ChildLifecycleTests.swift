import OneoWire
import Supervisor
import Testing

@Suite("Child lifecycle: the restart policy as a state machine")
struct ChildLifecycleTests {
    let start = ContinuousClock.now

    func crash(_ lifecycle: inout ChildLifecycle, at offset: Duration, random: Double = 0) -> ChildLifecycle.Decision {
        lifecycle.spawned(at: self.start + offset)
        return lifecycle.exited("exit code 1", at: self.start + offset, expected: false, random: random)
    }

    @Test("restart delays double from 100 ms to the 30 s cap")
    func backoffDoubles() {
        var policy = RestartPolicy()
        policy.crashLoopRestarts = 100
        var lifecycle = ChildLifecycle(policy: policy)
        var waits: [Duration] = []
        for index in 0..<12 {
            let now = Duration.seconds(index * 100)
            guard case .restart(let at) = self.crash(&lifecycle, at: now) else {
                Issue.record("expected a restart")
                return
            }
            waits.append(at - (self.start + now))
        }
        #expect(waits.prefix(5) == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600)])
        #expect(waits.last == .seconds(30))
        #expect(lifecycle.state == .backoff)
        #expect(lifecycle.restarts == 12)
    }

    @Test("jitter shortens a wait by at most its fraction")
    func jitterBounds() {
        var lifecycle = ChildLifecycle(policy: RestartPolicy())
        guard case .restart(let at) = self.crash(&lifecycle, at: .zero, random: 0.999_999) else {
            Issue.record("expected a restart")
            return
        }
        let wait = at - self.start
        #expect(wait >= .milliseconds(80) && wait < .milliseconds(81))
    }

    @Test("the sixth restart within 60 s is a crash loop, held back with the last exit reason")
    func crashLoop() {
        var lifecycle = ChildLifecycle(policy: RestartPolicy())
        for index in 0..<5 {
            guard case .restart = self.crash(&lifecycle, at: .seconds(index)) else {
                Issue.record("restart \(index + 1) should be allowed")
                return
            }
        }
        lifecycle.spawned(at: self.start + .seconds(5))
        let decision = lifecycle.exited("exit code 78", at: self.start + .seconds(5), expected: false, random: 0)
        #expect(decision == .holdBack(until: self.start + .seconds(305)))
        #expect(lifecycle.state == .crashLooping)
        #expect(lifecycle.lastExit == "exit code 78")
    }

    @Test("restarts spread over more than the window are not a crash loop")
    func slowCrashesAreNotALoop() {
        var lifecycle = ChildLifecycle(policy: RestartPolicy())
        for index in 0..<20 {
            let decision = self.crash(&lifecycle, at: .seconds(index * 13))
            guard case .restart = decision else {
                Issue.record("restart \(index + 1) was \(decision)")
                return
            }
        }
    }

    @Test("five healthy minutes forget earlier restarts and the backoff")
    func healthyResets() {
        var lifecycle = ChildLifecycle(policy: RestartPolicy())
        for index in 0..<5 { _ = self.crash(&lifecycle, at: .seconds(index)) }
        lifecycle.spawned(at: self.start + .seconds(10))
        lifecycle.ready()
        #expect(lifecycle.state == .running)
        let decision = lifecycle.exited("signal 9", at: self.start + .seconds(10) + .seconds(301), expected: false, random: 0)
        #expect(decision == .restart(at: self.start + .seconds(311) + .milliseconds(100)))
    }

    @Test("an expected exit stops the child without counting a restart")
    func expectedExit() {
        var lifecycle = ChildLifecycle(policy: RestartPolicy())
        lifecycle.spawned(at: self.start)
        lifecycle.ready()
        lifecycle.draining()
        #expect(lifecycle.state == .draining)
        #expect(lifecycle.exited("exit code 0", at: self.start + .seconds(2), expected: true, random: 0) == .stayStopped)
        #expect(lifecycle.state == .stopped)
        #expect(lifecycle.restarts == 0)
    }

    @Test("an operator's start forgives a crash loop")
    func operatorStart() {
        var lifecycle = ChildLifecycle(policy: RestartPolicy())
        for index in 0..<6 { _ = self.crash(&lifecycle, at: .seconds(index)) }
        #expect(lifecycle.state == .crashLooping)
        lifecycle.operatorStart()
        #expect(lifecycle.state == .stopped)
        #expect(self.crash(&lifecycle, at: .seconds(7)) == .restart(at: self.start + .seconds(7) + .milliseconds(100)))
    }
}
