@testable import Supervisor
import Testing

/// The child's state machine without processes: each event's action, including the two races
/// the 1,000-tenant benchmark found (a second start during a spawn; a leftover loop).
@Suite("child state machine")
struct ChildStateTests {
    let start = ContinuousClock.now

    @Test("one process slot: no second start while preparing or running; empty again after exit or a failed spawn")
    func oneSlot() {
        var state = ChildState(now: self.start)
        #expect(state.mayStart(stopping: false))
        #expect(!state.mayStart(stopping: true))
        let result1 = state.beginPreparing()
        #expect(result1)
        #expect(!state.mayStart(stopping: false), "a spawn in flight blocks a second start")
        let result2 = state.beginPreparing()
        #expect(!result2)
        let result3 = state.demand(now: self.start, loopRunning: false, lifecycleStopped: true)
        #expect(result3 == .none, "work during a spawn starts nothing more")
        state.preparationEnded()
        #expect(state.mayStart(stopping: false), "a failed spawn frees the slot")
        let result4 = state.beginPreparing()
        #expect(result4)
        let generation = state.spawned(pid: 42, now: self.start)
        #expect(state.pid == 42)
        #expect(state.isCurrent(generation))
        #expect(!state.mayStart(stopping: false))
        state.exited()
        #expect(!state.isCurrent(generation), "frames of an exited process are ignored")
        #expect(state.mayStart(stopping: false))
    }

    @Test("demand, by hold and loop", arguments: [
        (ChildState.Hold?.none, false, false, ChildState.DemandAction.supervise, ChildState.Hold?.none),
        (.none, true, false, .none, .none),      // a loop waits out a backoff: it keeps its schedule
        (.none, true, true, .supervise, .none),  // a leftover loop of a stopped child: start anew
        (.idle, false, false, .supervise, .none),
        (.inactive, false, false, .supervise, .none),
        (.operatorStop, false, false, .none, .operatorStop),
        (.shutdown, false, false, .none, .shutdown),
    ])
    func demand(hold: ChildState.Hold?, loopRunning: Bool, lifecycleStopped: Bool, action: ChildState.DemandAction, holdAfter: ChildState.Hold?) {
        var state = ChildState(now: self.start)
        state.hold = hold
        let result5 = state.demand(now: self.start, loopRunning: loopRunning, lifecycleStopped: lifecycleStopped)
        #expect(result5 == action)
        #expect(state.hold == holdAfter)
    }

    @Test("work arriving while an idle processor drains starts it again after; an operator's restart too; else the policy decides")
    func afterExit() {
        var state = ChildState(now: self.start)
        let result6 = state.beginPreparing()
        #expect(result6)
        _ = state.spawned(pid: 1, now: self.start)
        state.hold = .idle
        let result7 = state.demand(now: self.start, loopRunning: true, lifecycleStopped: false)
        #expect(result7 == .none)
        state.exited()
        let result8 = state.afterExit(stopping: false)
        #expect(result8 == .startAgain)
        #expect(state.hold == nil)
        let result9 = state.afterExit(stopping: false)
        #expect(result9 == .byPolicy)
        state.restartRequested = true
        let result10 = state.afterExit(stopping: true)
        #expect(result10 == .startAgain)
        #expect(!state.restartRequested)
    }

    @Test("ticks: silent past the timeout is terminated once; idle past the timeout is stopped, unless always on or busy")
    func ticks() {
        let heartbeat = Duration.seconds(10)
        let idle = Duration.seconds(60)
        var state = ChildState(now: self.start)
        _ = state.beginPreparing()
        _ = state.spawned(pid: 7, now: self.start)
        let result11 = state.tick(now: self.start + .seconds(5), heartbeatTimeout: heartbeat, idleTimeout: idle, idleStoppable: true)
        #expect(result11 == .none)
        let result12 = state.tick(now: self.start + .seconds(11), heartbeatTimeout: heartbeat, idleTimeout: idle, idleStoppable: true)
        #expect(result12 == .terminateSilent(silentFor: .seconds(11)))
        state.terminationSent = true
        // Heartbeats with work keep it busy; without, it goes idle after the timeout.
        let result13 = state.heartbeat(inFlight: 2, completed: 0, now: self.start + .seconds(30))
        #expect(result13 == true, "no queue connection yet")
        state.queueGeneration = 1
        let result14 = state.heartbeat(inFlight: 0, completed: 5, now: self.start + .seconds(40))
        #expect(result14 == false)
        let result15 = state.tick(now: self.start + .seconds(90), heartbeatTimeout: .seconds(100), idleTimeout: idle, idleStoppable: true)
        #expect(result15 == .none)
        state.alwaysOn = true
        let result16 = state.tick(now: self.start + .seconds(101), heartbeatTimeout: .seconds(100), idleTimeout: idle, idleStoppable: true)
        #expect(result16 == .none, "always on")
        state.alwaysOn = false
        let result17 = state.tick(now: self.start + .seconds(101), heartbeatTimeout: .seconds(100), idleTimeout: idle, idleStoppable: false)
        #expect(result17 == .none, "not a running processor")
        let result18 = state.tick(now: self.start + .seconds(101), heartbeatTimeout: .seconds(100), idleTimeout: idle, idleStoppable: true)
        #expect(result18 == .stopIdle(idleFor: .seconds(61)))
        #expect(state.hold == .idle)
        let result19 = state.tick(now: self.start + .seconds(102), heartbeatTimeout: .seconds(100), idleTimeout: idle, idleStoppable: true)
        #expect(result19 == .none, "held: stopped once")
    }

    @Test("a new process starts with no work waiting from an earlier drain, and an operator's restart clears it too")
    func workArrivedDoesNotOutliveItsProcess() {
        var state = ChildState(now: self.start)
        _ = state.beginPreparing()
        _ = state.spawned(pid: 1, now: self.start)
        state.hold = .idle
        _ = state.demand(now: self.start, loopRunning: true, lifecycleStopped: false)
        state.restartRequested = true
        state.exited()
        let first = state.afterExit(stopping: false)
        #expect(first == .startAgain)
        state.hold = .idle
        let second = state.afterExit(stopping: false)
        #expect(second == .byPolicy, "the work that arrived was for the process the restart replaced")
    }
}
