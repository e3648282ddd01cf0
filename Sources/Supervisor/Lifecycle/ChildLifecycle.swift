public import OneoWire
public import OneoStore
public import OneoCore

/// The restart bookkeeping of one supervised child, as a pure state machine: the supervisor feeds
/// it events with their time, and it answers what to do next. No clocks, no processes, no I/O, so
/// every rule of the policy is tested directly.
public struct ChildLifecycle: Sendable {
    public typealias Instant = ContinuousClock.Instant

    public enum Phase: Sendable, Equatable {
        /// Spawned, not yet reported ready.
        case starting(since: Instant)
        case running(since: Instant)
        /// Asked to finish its work and exit.
        case draining(since: Instant)
        /// Not running and not coming back on its own (an operator stop, idleness, shutdown).
        case stopped
        /// Exited; restarts at `until`.
        case backoff(until: Instant)
        /// Restarted too often; held back until `until` or an operator's start.
        case crashLooping(until: Instant)
    }

    /// What the supervisor does after an exit.
    public enum Decision: Sendable, Equatable {
        case restart(at: Instant)
        case holdBack(until: Instant)
        case stayStopped
    }

    public let policy: RestartPolicy
    public private(set) var phase: Phase = .stopped
    /// Every restart since the child was created (status shows it).
    public private(set) var restarts = 0
    /// Restart times still inside the crash-loop window.
    private var recentRestarts: [Instant] = []
    /// The wait before the next restart, before jitter.
    private var delay: Duration
    private var spawnedAt: Instant?
    public private(set) var lastExit: String?

    public init(policy: RestartPolicy) {
        self.policy = policy
        self.delay = policy.initialDelay
    }

    public var state: ChildStatus.State {
        switch self.phase {
        case .starting: .starting
        case .running: .running
        case .draining: .draining
        case .stopped: .stopped
        case .backoff: .backoff
        case .crashLooping: .crashLooping
        }
    }

    public var isAlive: Bool {
        switch self.phase {
        case .starting, .running, .draining: true
        case .stopped, .backoff, .crashLooping: false
        }
    }

    /// Since when the current process has been running, if it has.
    public var upSince: Instant? {
        switch self.phase {
        case .starting(let since), .running(let since), .draining(let since): since
        default: nil
        }
    }

    public mutating func spawned(at now: Instant) {
        self.spawnedAt = now
        self.phase = .starting(since: now)
    }

    public mutating func ready() {
        guard case .starting(let since) = self.phase else { return }
        self.phase = .running(since: since)
    }

    public mutating func draining() {
        guard let since = self.upSince else { return }
        self.phase = .draining(since: since)
    }

    /// The child could not even be started (its spec failed, exec failed).
    public mutating func failedToStart(_ reason: String, at now: Instant, random: Double) -> Decision {
        self.spawnedAt = now
        return self.exited(reason, at: now, expected: false, random: random)
    }

    /// The child's process is gone. `expected` exits (an operator stop, idleness, shutdown) stop
    /// it; any other exit schedules a restart by the policy. `random` is in [0, 1): the jitter.
    public mutating func exited(_ reason: String, at now: Instant, expected: Bool, random: Double) -> Decision {
        let ranFor = self.spawnedAt.map { now - $0 } ?? .zero
        self.spawnedAt = nil
        if expected {
            self.phase = .stopped
            if ranFor >= self.policy.healthyReset { self.forgetRestarts() }
            return .stayStopped
        }
        self.lastExit = reason
        if ranFor >= self.policy.healthyReset { self.forgetRestarts() }
        let window = self.policy.crashLoopWindow
        self.recentRestarts.removeAll { now - $0 > window }
        self.recentRestarts.append(now)
        self.restarts += 1
        if self.recentRestarts.count > self.policy.crashLoopRestarts {
            let until = now + self.policy.crashLoopHold
            self.phase = .crashLooping(until: until)
            return .holdBack(until: until)
        }
        let wait = self.delay * (1 - self.policy.jitter * min(max(random, 0), 1))
        self.delay = min(self.delay * 2, self.policy.maximumDelay)
        let at = now + wait
        self.phase = .backoff(until: at)
        return .restart(at: at)
    }

    /// An operator's start or restart: no backoff, and a crash loop forgiven.
    public mutating func operatorStart() {
        self.forgetRestarts()
        if !self.isAlive { self.phase = .stopped }
    }

    /// Stopped without a process (held by an operator, or never started).
    public mutating func hold() {
        if !self.isAlive { self.phase = .stopped }
    }

    private mutating func forgetRestarts() {
        self.recentRestarts.removeAll()
        self.delay = self.policy.initialDelay
    }
}
