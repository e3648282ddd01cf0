/// What an operator's command asks the running supervisor, over `<data-dir>/run/oneo-ai.sock`.
public struct ControlRequest: Sendable, Codable, Equatable {
    public enum Command: String, Sendable, Codable {
        /// Every child and its state.
        case status
        /// Drain the tenant's processor (up to the timeout) and start it again.
        case restart
        /// Drain the tenant's processor and keep it stopped until `start` (or serve restarts).
        case stop
        /// Start the tenant's processor now, also out of crash-looping.
        case start
    }

    public var command: Command
    public var tenant: String?
    public var timeoutSeconds: Int?

    public init(command: Command, tenant: String? = nil, timeoutSeconds: Int? = nil) {
        self.command = command
        self.tenant = tenant
        self.timeoutSeconds = timeoutSeconds
    }

    enum CodingKeys: String, CodingKey { case command, tenant, timeoutSeconds = "timeout_seconds" }

    /// Control frames are small; a longer one is refused before it is read.
    public static let maximumSize = 64 * 1024
}

/// The supervisor's answer: the children for `status`, the affected child otherwise, or an error.
public struct ControlReply: Sendable, Codable, Equatable {
    public var children: [ChildStatus]?
    public var error: ControlError?

    public init(children: [ChildStatus]? = nil, error: ControlError? = nil) {
        self.children = children
        self.error = error
    }
}

public struct ControlError: Error, Sendable, Codable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.message) (\(self.code))" }
}

/// One row of `oneo-ai status`.
public struct ChildStatus: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable {
        case starting, running, draining, stopped, backoff
        case crashLooping = "crash-looping"
    }

    public var name: String
    public var role: String
    public var tenant: String?
    public var pid: Int32?
    public var state: State
    public var uptimeSeconds: Double?
    public var restarts: Int
    public var jobsInFlight: Int?
    public var lastError: String?
    /// Why a stopped child is stopped (`idle`, `operator`), or when a held-back one retries.
    public var detail: String?

    public init(name: String, role: String, tenant: String?, pid: Int32?, state: State, uptimeSeconds: Double?, restarts: Int, jobsInFlight: Int?, lastError: String?, detail: String?) {
        self.name = name
        self.role = role
        self.tenant = tenant
        self.pid = pid
        self.state = state
        self.uptimeSeconds = uptimeSeconds
        self.restarts = restarts
        self.jobsInFlight = jobsInFlight
        self.lastError = lastError
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case name = "child", role, tenant, pid, state, uptimeSeconds = "uptime_seconds", restarts
        case jobsInFlight = "jobs_in_flight", lastError = "last_error", detail
    }
}
