/// Frames the supervisor sends a child after its bootstrap. A fixed table: anything else is a
/// protocol error and ends the child.
public enum SupervisorMessage: Sendable, Equatable, Codable {
    /// Work was queued for this processor's tenant: claim now rather than at the next poll.
    case wake
    /// Stop taking work, finish what is in flight within `timeoutMilliseconds`, release the rest
    /// for retry, and exit 0.
    case drain(timeoutMilliseconds: Int)

    private enum CodingKeys: String, CodingKey { case type, timeoutMilliseconds = "timeout_ms" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .type) {
        case "wake": self = .wake
        case "drain": self = .drain(timeoutMilliseconds: max(0, try container.decode(Int.self, forKey: .timeoutMilliseconds)))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown supervisor frame \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .wake:
            try container.encode("wake", forKey: .type)
        case .drain(let timeout):
            try container.encode("drain", forKey: .type)
            try container.encode(timeout, forKey: .timeoutMilliseconds)
        }
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

    private enum CodingKeys: String, CodingKey { case type, inFlight = "in_flight", completed }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .type) {
        case "ready": self = .ready
        case "heartbeat":
            self = .heartbeat(
                inFlight: max(0, try container.decodeIfPresent(Int.self, forKey: .inFlight) ?? 0),
                completed: max(0, try container.decodeIfPresent(Int.self, forKey: .completed) ?? 0)
            )
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
        }
    }
}
