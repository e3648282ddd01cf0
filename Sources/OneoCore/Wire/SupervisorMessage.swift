/// Frames the supervisor sends a child after its bootstrap. A fixed table: anything else is a
/// protocol error and ends the child.
public enum SupervisorMessage: Sendable, Equatable {
    /// Work was queued for this processor's tenant: claim now rather than at the next poll.
    case wake

    public var frame: Frame.Typed { Frame.Typed(type: "wake") }

    public init?(_ frame: Frame.Typed) {
        switch frame.type {
        case "wake": self = .wake
        default: return nil
        }
    }
}

extension Frame {
    /// A frame that carries only its type.
    public struct Typed: Codable, Sendable, Equatable {
        public let type: String
        public init(type: String) { self.type = type }
    }
}
