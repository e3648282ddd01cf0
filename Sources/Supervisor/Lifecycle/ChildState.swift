#if canImport(Glibc)
import Glibc
#endif

/// What the supervisor knows and decides about one child, as a value (postgres-nio's
/// `PoolStateMachine` is the model): each event is a method that changes the state and returns
/// what to do, and the supervisor only carries the actions out. The restart policy is its own
/// machine (`ChildLifecycle`); this one owns everything else: holds, the process slot, liveness,
/// idleness and the queue connection. Unit-tested without processes (ChildStateTests).
struct ChildState {
    /// Why a child is not to run.
    enum Hold: String, Sendable {
        /// `tenant stop`: until `tenant start` (or serve restarts).
        case operatorStop = "stopped by operator"
        /// No work for the idle timeout: until work arrives.
        case idle = "idle"
        /// The tenant was suspended or deleted.
        case inactive = "tenant not active"
        /// serve is stopping.
        case shutdown = "shutting down"
    }

    /// The one process slot of the child: empty, being prepared and spawned, or taken.
    enum Slot: Equatable {
        case empty
        /// From the decision to start until the spawn returned: reading the tenant, opening its
        /// key, the spawn itself. No second start may begin meanwhile.
        case preparing
        case running(pid: pid_t, generation: Int)
    }

    private(set) var slot = Slot.empty
    /// Counts spawns: a frame or timer of an earlier process of this child is ignored.
    private(set) var generation = 0
    var hold: Hold?
    var alwaysOn = false
    /// An operator's restart: the next exit starts it again at once.
    var restartRequested = false
    /// Work arrived while an idle processor was draining: start again when it is gone.
    private(set) var workArrived = false
    private(set) var lastHeard: ContinuousClock.Instant
    private(set) var lastBusy: ContinuousClock.Instant
    private(set) var inFlight = 0
    private(set) var completed = 0
    var terminationSent = false
    /// A processor: the queue manager generation it is connected to, if any.
    var queueGeneration: Int?

    init(now: ContinuousClock.Instant) {
        self.lastHeard = now
        self.lastBusy = now
    }

    var pid: pid_t? {
        if case .running(let pid, _) = self.slot { return pid }
        return nil
    }

    var isPreparing: Bool { self.slot == .preparing }

    // MARK: Starting and stopping a process

    /// Whether a supervising loop may start now: only when the slot is empty.
    func mayStart(stopping: Bool) -> Bool {
        !stopping && self.slot == .empty
    }

    /// A loop begins preparing a process; false (nothing changes) when the slot is not empty.
    mutating func beginPreparing() -> Bool {
        guard self.slot == .empty else { return false }
        self.slot = .preparing
        return true
    }

    /// The preparation or the spawn failed, or the loop gave way: the slot is empty again.
    mutating func preparationEnded() {
        if self.slot == .preparing { self.slot = .empty }
    }

    /// The spawn returned `pid`: the slot is taken and liveness starts over. Returns the
    /// process's generation.
    mutating func spawned(pid: pid_t, now: ContinuousClock.Instant) -> Int {
        self.generation += 1
        self.slot = .running(pid: pid, generation: self.generation)
        self.workArrived = false
        self.terminationSent = false
        self.inFlight = 0
        self.completed = 0
        self.queueGeneration = nil
        self.lastHeard = now
        self.lastBusy = now
        return self.generation
    }

    /// The process exited.
    mutating func exited() {
        self.slot = .empty
        self.inFlight = 0
        self.queueGeneration = nil
    }

    /// Whether `generation` is the running process's (frames and timers of earlier ones are
    /// ignored).
    func isCurrent(_ generation: Int) -> Bool {
        if case .running(_, let current) = self.slot { return current == generation }
        return false
    }

    // MARK: Demand

    enum DemandAction: Equatable {
        /// Nothing to do: running (an idle drain now restarts it after), held, or a loop is
        /// already on its way.
        case none
        /// Start a supervising loop.
        case supervise
    }

    /// Work for this child (a processor's tenant has due jobs, or is always on).
    /// - Parameters:
    ///   - loopRunning: a supervising loop exists (waiting out a backoff keeps its schedule).
    ///   - lifecycleStopped: the restart policy has it stopped (so a leftover loop is done).
    mutating func demand(now: ContinuousClock.Instant, loopRunning: Bool, lifecycleStopped: Bool) -> DemandAction {
        self.lastBusy = now
        switch self.slot {
        case .running:
            if self.hold == .idle { self.workArrived = true }
            return .none
        case .preparing:
            return .none
        case .empty:
            break
        }
        switch self.hold {
        case .operatorStop, .shutdown: return .none
        case .idle, .inactive: self.hold = nil
        case nil: break
        }
        return !loopRunning || lifecycleStopped ? .supervise : .none
    }

    // MARK: After an exit

    enum AfterExit: Equatable {
        /// Start again at once: an operator's restart, or work arrived during an idle drain.
        case startAgain
        /// The restart policy decides.
        case byPolicy
    }

    mutating func afterExit(stopping: Bool) -> AfterExit {
        if self.restartRequested {
            self.restartRequested = false
            self.workArrived = false
            return .startAgain
        }
        if self.hold == .idle, self.workArrived, !stopping {
            self.hold = nil
            self.workArrived = false
            return .startAgain
        }
        return .byPolicy
    }

    // MARK: Liveness

    /// A heartbeat: the child is alive; busy when it holds work or finished some since the
    /// last one. Returns whether a processor still needs a queue connection.
    mutating func heartbeat(inFlight: Int, completed: Int, now: ContinuousClock.Instant) -> Bool {
        self.lastHeard = now
        if inFlight > 0 || completed != self.completed { self.lastBusy = now }
        self.inFlight = inFlight
        self.completed = completed
        return self.queueGeneration == nil
    }

    mutating func heard(now: ContinuousClock.Instant) {
        self.lastHeard = now
    }

    enum TickAction: Equatable {
        case none
        /// Silent past the heartbeat timeout: terminate it (it is restarted).
        case terminateSilent(silentFor: Duration)
        /// A processor with nothing to do past the idle timeout: drain it, held as idle.
        case stopIdle(idleFor: Duration)
    }

    /// The periodic check of a running child that speaks our protocol.
    /// - Parameter idleStoppable: a processor, not always on, that the restart policy has running.
    mutating func tick(now: ContinuousClock.Instant, heartbeatTimeout: Duration, idleTimeout: Duration, idleStoppable: Bool) -> TickAction {
        guard self.pid != nil else { return .none }
        if !self.terminationSent, now - self.lastHeard > heartbeatTimeout {
            return .terminateSilent(silentFor: now - self.lastHeard)
        }
        if idleStoppable, self.hold == nil, !self.alwaysOn, self.inFlight == 0, now - self.lastBusy > idleTimeout {
            self.hold = .idle
            return .stopIdle(idleFor: now - self.lastBusy)
        }
        return .none
    }
}
