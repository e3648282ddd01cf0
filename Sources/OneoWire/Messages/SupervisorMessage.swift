/// Frames the supervisor sends a child after its bootstrap. A fixed table: anything else is a
/// protocol error and ends the child.
public enum SupervisorMessage: Sendable, Equatable, Codable {
    /// Stop taking work, finish what is in flight within `timeoutMilliseconds`, release the rest
    /// for retry, and exit 0. Answered by `accepted(request)` as the drain begins.
    case drain(timeoutMilliseconds: Int, request: UInt32)
    /// To a processor: the descriptor sent with this frame is its connection to the queue
    /// manager (a new one replaces the old, when the queue manager restarted). Answered by
    /// `accepted(request)` once the descriptor is taken.
    case queue(request: UInt32)
    /// To the queue manager: the descriptor sent with this frame is a connection to the
    /// processor of `tenant`, which runs up to `concurrency` jobs at once. Answered by
    /// `accepted(request)`.
    case processor(tenant: TenantID, name: String, concurrency: Int, request: UInt32)
    /// To a processor: the descriptor sent with this frame is its connection to the supervisor's
    /// tool router (tool calls and their results). Answered by `accepted(request)`.
    case tools(request: UInt32)
    /// To the API: the answer to its `health` question `request` (nil: that tenant has no
    /// processor child yet).
    case health(request: UInt32, ProcessorHealth?)

    private enum CodingKeys: String, CodingKey { case type, timeoutMilliseconds = "timeout_ms", tenant, name, concurrency, request, health }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let request = try container.decodeIfPresent(UInt32.self, forKey: .request) ?? 0
        switch try container.decode(String.self, forKey: .type) {
        case "drain": self = .drain(timeoutMilliseconds: max(0, try container.decode(Int.self, forKey: .timeoutMilliseconds)), request: request)
        case "queue": self = .queue(request: request)
        case "tools": self = .tools(request: request)
        case "processor":
            self = .processor(
                tenant: try container.decode(TenantID.self, forKey: .tenant), name: try container.decode(String.self, forKey: .name),
                concurrency: max(1, try container.decode(Int.self, forKey: .concurrency)), request: request
            )
        case "health":
            self = .health(request: try container.decode(UInt32.self, forKey: .request), try container.decodeIfPresent(ProcessorHealth.self, forKey: .health))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown supervisor frame \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .drain(let timeout, let request):
            try container.encode("drain", forKey: .type)
            try container.encode(timeout, forKey: .timeoutMilliseconds)
            try container.encode(request, forKey: .request)
        case .queue(let request):
            try container.encode("queue", forKey: .type)
            try container.encode(request, forKey: .request)
        case .tools(let request):
            try container.encode("tools", forKey: .type)
            try container.encode(request, forKey: .request)
        case .processor(let tenant, let name, let concurrency, let request):
            try container.encode("processor", forKey: .type)
            try container.encode(tenant, forKey: .tenant)
            try container.encode(name, forKey: .name)
            try container.encode(concurrency, forKey: .concurrency)
            try container.encode(request, forKey: .request)
        case .health(let request, let health):
            try container.encode("health", forKey: .type)
            try container.encode(request, forKey: .request)
            try container.encodeIfPresent(health, forKey: .health)
        }
    }
}

/// A processor's newest provider call: whether it got an answer (any HTTP answer counts as
/// reachable; `code` says which failure, if any), how long the call took, and how long ago it
/// ended. Values are clamped when decoded: they come from the processor.
public struct ProviderCall: Sendable, Codable, Equatable {
    public var reachable: Bool
    public var code: String?
    public var latencyMilliseconds: Int
    public var ageMilliseconds: Int

    public init(reachable: Bool, code: String?, latencyMilliseconds: Int, ageMilliseconds: Int) {
        self.reachable = reachable
        self.code = code.map { String($0.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_") }.prefix(64).map(Character.init)) }
        self.latencyMilliseconds = min(max(0, latencyMilliseconds), 86_400_000)
        self.ageMilliseconds = min(max(0, ageMilliseconds), 86_400_000 * 365)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            reachable: try container.decode(Bool.self, forKey: .reachable), code: try container.decodeIfPresent(String.self, forKey: .code),
            latencyMilliseconds: try container.decode(Int.self, forKey: .latencyMilliseconds), ageMilliseconds: try container.decode(Int.self, forKey: .ageMilliseconds)
        )
    }

    private enum CodingKeys: String, CodingKey {
        case reachable, code, latencyMilliseconds = "latency_ms", ageMilliseconds = "age_ms"
    }
}

/// A tenant's processor as the supervisor sees it, for that tenant's `worker_health`: nothing
/// about any other child, no pid, no path.
public struct ProcessorHealth: Sendable, Codable, Equatable {
    /// starting, running, draining, stopped, backoff, crash-looping.
    public var state: String
    public var uptimeSeconds: Double?
    public var restarts: Int
    public var jobsInFlight: Int
    public var jobsCompleted: Int
    /// Since the processor's last heartbeat (nil when none is running).
    public var lastHeartbeatSecondsAgo: Double?
    /// Why it is stopped (`idle`, `operator`) or when it restarts.
    public var detail: String?
    /// How its last run ended, cut short.
    public var lastExit: String?
    /// Its newest provider call (`age_ms` as of the answer).
    public var providerCall: ProviderCall?

    public init(
        state: String, uptimeSeconds: Double?, restarts: Int, jobsInFlight: Int, jobsCompleted: Int, lastHeartbeatSecondsAgo: Double?,
        detail: String?, lastExit: String?, providerCall: ProviderCall? = nil
    ) {
        self.providerCall = providerCall
        self.state = state
        self.uptimeSeconds = uptimeSeconds
        self.restarts = restarts
        self.jobsInFlight = jobsInFlight
        self.jobsCompleted = jobsCompleted
        self.lastHeartbeatSecondsAgo = lastHeartbeatSecondsAgo
        self.detail = detail.map { String($0.prefix(200)) }
        self.lastExit = lastExit.map { String($0.prefix(200)) }
    }

    private enum CodingKeys: String, CodingKey {
        case state, restarts, detail
        case uptimeSeconds = "uptime_seconds", jobsInFlight = "jobs_in_flight", jobsCompleted = "jobs_completed"
        case lastHeartbeatSecondsAgo = "last_heartbeat_seconds_ago", lastExit = "last_exit", providerCall = "provider_call"
    }
}

/// Frames a child sends the supervisor. Small and fixed; the supervisor drops anything else and
/// counts it as silence.
public enum ChildMessage: Sendable, Equatable, Codable {
    /// Started and able to work (a processor: connected to its database).
    case ready
    /// Alive; with the jobs it holds now and the jobs it has finished since it started, from
    /// which the supervisor sees both progress and idleness.
    case heartbeat(inFlight: Int, completed: Int)
    /// From a processor: the queue manager closed its connection; it waits for a new one.
    case queueLost
    /// From a processor: its tool connection closed; it waits for a new one.
    case toolsLost
    /// From the API: the port it listens on (the kernel's pick when serve was given port 0).
    case listening(port: Int)
    /// From the API: how is this tenant's processor? Answered by `SupervisorMessage.health`
    /// with the same request id.
    case health(request: UInt32, tenant: TenantID)
    /// From a processor, with its heartbeat: its newest provider call, as reachability evidence.
    case providerCall(ProviderCall)
    /// The supervisor's request `request` (a drain, a connection handed over) was taken.
    case accepted(request: UInt32)
    /// From the queue manager: these tenants have due work and no processor connected.
    case need(tenants: [TenantID])
    /// From the queue manager: tenants or their settings changed (relayed from NOTIFY).
    case tenantsChanged

    /// Tenants per `need` frame: small enough to go in one non-blocking write, whole.
    public static let maximumTenantsPerFrame = 16

    private enum CodingKeys: String, CodingKey { case type, inFlight = "in_flight", completed, tenants, port, request, tenant, call }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .type) {
        case "ready": self = .ready
        case "heartbeat":
            self = .heartbeat(
                inFlight: max(0, try container.decodeIfPresent(Int.self, forKey: .inFlight) ?? 0),
                completed: max(0, try container.decodeIfPresent(Int.self, forKey: .completed) ?? 0)
            )
        case "need":
            let tenants = try container.decode([TenantID].self, forKey: .tenants)
            guard tenants.count <= Self.maximumTenantsPerFrame else {
                throw DecodingError.dataCorruptedError(forKey: .tenants, in: container, debugDescription: "too many tenants in one frame")
            }
            self = .need(tenants: tenants)
        case "tenants_changed": self = .tenantsChanged
        case "queue_lost": self = .queueLost
        case "tools_lost": self = .toolsLost
        case "listening":
            let port = try container.decode(Int.self, forKey: .port)
            guard (1...65535).contains(port) else {
                throw DecodingError.dataCorruptedError(forKey: .port, in: container, debugDescription: "not a port")
            }
            self = .listening(port: port)
        case "health":
            self = .health(request: try container.decode(UInt32.self, forKey: .request), tenant: try container.decode(TenantID.self, forKey: .tenant))
        case "provider_call":
            self = .providerCall(try container.decode(ProviderCall.self, forKey: .call))
        case "accepted":
            self = .accepted(request: try container.decode(UInt32.self, forKey: .request))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown child frame \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .ready:
            try container.encode("ready", forKey: .type)
        case .heartbeat(let inFlight, let completed):
            try container.encode("heartbeat", forKey: .type)
            try container.encode(inFlight, forKey: .inFlight)
            try container.encode(completed, forKey: .completed)
        case .need(let tenants):
            try container.encode("need", forKey: .type)
            try container.encode(tenants, forKey: .tenants)
        case .toolsLost:
            try container.encode("tools_lost", forKey: .type)
        case .tenantsChanged:
            try container.encode("tenants_changed", forKey: .type)
        case .queueLost:
            try container.encode("queue_lost", forKey: .type)
        case .listening(let port):
            try container.encode("listening", forKey: .type)
            try container.encode(port, forKey: .port)
        case .health(let request, let tenant):
            try container.encode("health", forKey: .type)
            try container.encode(request, forKey: .request)
            try container.encode(tenant, forKey: .tenant)
        case .providerCall(let call):
            try container.encode("provider_call", forKey: .type)
            try container.encode(call, forKey: .call)
        case .accepted(let request):
            try container.encode("accepted", forKey: .type)
            try container.encode(request, forKey: .request)
        }
    }
}
