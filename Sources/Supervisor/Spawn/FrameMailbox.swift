import OneoWire
import Synchronization

/// One child's frames on their way to the supervisor actor: a heartbeat (or provider call) replaces the one still
/// waiting, other frames queue up to a bound, and one delivery runs at a time. A child that
/// floods its socket costs a short queue and one task, never a task per frame, so the other
/// children's heartbeats are heard on time.
final class FrameMailbox: Sendable {
    static let capacity = 64
    static let answerCapacity = 4_096

    private static func isAnswer(_ message: ChildMessage?) -> Bool {
        if case .accepted = message { return true }
        return false
    }

    private struct State {
        var queue: [ChildMessage?] = []
        var delivering = false
        var dropped = 0
    }

    private let state = Mutex(State())

    /// Queues a frame (nil: one that broke the protocol); true when the caller must start the
    /// delivery, which then runs until `take` finds nothing.
    func offer(_ message: ChildMessage?) -> Bool {
        self.state.withLock { state in
            if case .heartbeat = message, let index = state.queue.lastIndex(where: { if case .heartbeat = $0 { true } else { false } }) {
                state.queue[index] = message
            } else if case .providerCall = message, let index = state.queue.lastIndex(where: { if case .providerCall = $0 { true } else { false } }) {
                state.queue[index] = message
            } else if case .need(let tenants) = message, let index = state.queue.lastIndex(where: { if case .need = $0 { true } else { false } }),
                      case .need(let earlier) = state.queue[index] {
                // Requests for processors merge: the supervisor reads a set of tenants, however many frames.
                state.queue[index] = .need(tenants: Array(Set(earlier + tenants)))
            } else if message == nil && state.queue.contains(where: { $0 == nil }) {
                // One broken frame says it all.
                state.dropped += 1
            } else if message == nil || state.queue.count < Self.capacity || Self.isAnswer(message) && state.queue.count < Self.answerCapacity {
                // Answers to our own requests pass the bound (their number is ours to bound):
                // a lost one would cost a needless reconnect or SIGTERM.
                // A broken frame is never dropped: it is what ends the supervisor's reading of the child.
                state.queue.append(message)
            } else {
                state.dropped += 1
            }
            guard !state.delivering else { return false }
            state.delivering = true
            return true
        }
    }

    /// What waits now, and how many frames were dropped since the last take; an empty list
    /// ends the delivery.
    func take() -> (messages: [ChildMessage?], dropped: Int) {
        self.state.withLock { state in
            let taken = (state.queue, state.dropped)
            state.queue = []
            state.dropped = 0
            if taken.0.isEmpty { state.delivering = false }
            return taken
        }
    }
}
