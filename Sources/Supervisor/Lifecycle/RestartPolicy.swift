/// When a child that exited is started again. Plain values, so that status, tests and the
/// benchmark reason about the same numbers the supervisor uses.
public struct RestartPolicy: Sendable, Equatable {
    /// The first restart waits this long; each restart in a row doubles it, up to `maximumDelay`.
    public var initialDelay: Duration = .milliseconds(100)
    public var maximumDelay: Duration = .seconds(30)
    /// Each wait is drawn from [delay × (1 − jitter), delay], so children that failed together
    /// (the database went away) do not all come back in the same millisecond.
    public var jitter: Double = 0.2
    /// More than this many restarts within `crashLoopWindow` is a crash loop.
    public var crashLoopRestarts: Int = 5
    public var crashLoopWindow: Duration = .seconds(60)
    /// A crash-looping child is held back this long before one more try (an operator's
    /// `tenant start` tries at once).
    public var crashLoopHold: Duration = .seconds(300)
    /// Running this long without exiting forgets earlier restarts.
    public var healthyReset: Duration = .seconds(300)

    public init() {}
}
