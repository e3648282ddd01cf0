public import OneoWire
import Synchronization

/// Identical requests in flight at once make one provider call: the first to ask for a key leads
/// (it calls), the others wait for its value. A leader that fails hands its followers nothing,
/// and each then calls for itself.
public final class SingleFlight: Sendable {
    enum Role {
        case leader
        /// The leader's value, or nil when it had none (it failed, or this wait was cancelled).
        case follower(JSONValue?)
    }

    private struct State {
        var flights: [String: [Int: CheckedContinuation<JSONValue?, Never>]] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Leads the flight for `key`, or waits for the one in the air.
    func join(_ key: String) async -> Role {
        let waiter = self.state.withLock { state -> Int? in
            guard state.flights[key] != nil else {
                state.flights[key] = [:]
                return nil
            }
            state.nextWaiter += 1
            return state.nextWaiter
        }
        guard let waiter else { return .leader }
        let value = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<JSONValue?, Never>) in
                let waiting = self.state.withLock { state -> Bool in
                    guard state.flights[key] != nil, !Task.isCancelled else { return false }
                    state.flights[key]?[waiter] = continuation
                    return true
                }
                if !waiting { continuation.resume(returning: nil) }
            }
        } onCancel: {
            self.state.withLock { $0.flights[key]?.removeValue(forKey: waiter) }?.resume(returning: nil)
        }
        return .follower(value)
    }

    /// Ends the flight for `key`: every follower gets `value`.
    func finish(_ key: String, _ value: JSONValue?) {
        let waiting = self.state.withLock { $0.flights.removeValue(forKey: key) } ?? [:]
        for continuation in waiting.values { continuation.resume(returning: value) }
    }
}
