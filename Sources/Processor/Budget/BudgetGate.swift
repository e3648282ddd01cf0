public import OneoWire
import Synchronization

/// The processor's side of the budget: before each provider call of a budgeted job it asks the
/// queue manager to reserve the call's bound and waits for the answer. No answer (the connection
/// ended, the job was cancelled) is a refusal: a call is made only when a reservation says so.
public final class BudgetGate: Sendable {
    private struct Key: Hashable {
        let job: JobID
        let attempt: Int
        let call: Int
    }

    private struct State {
        var waiting: [Key: CheckedContinuation<BudgetAnswer, Never>] = [:]
        var send: (@Sendable (ProcessorReport) async -> Bool)?
    }

    private let state = Mutex(State())

    public init() {}

    /// Where requests go: the current queue connection's writer (nil: none, every request is refused).
    /// Requests waiting on an earlier connection are refused: their answers would never come.
    public func connect(_ send: (@Sendable (ProcessorReport) async -> Bool)?) {
        let orphaned = self.state.withLock { state in
            state.send = send
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        for (key, continuation) in orphaned {
            continuation.resume(returning: Self.refusal(key, .budgetUnavailable, "the queue connection changed before the reservation was answered"))
        }
    }

    /// Reserves `bound` for this call and returns the queue manager's answer.
    public func reserve(_ request: BudgetRequest) async -> BudgetAnswer {
        let key = Key(job: request.job, attempt: request.attempt, call: request.call)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<BudgetAnswer, Never>) in
                let send = self.state.withLock { state -> (@Sendable (ProcessorReport) async -> Bool)? in
                    guard let send = state.send, !Task.isCancelled, state.waiting[key] == nil else { return nil }
                    state.waiting[key] = continuation
                    return send
                }
                guard let send else {
                    let why = Task.isCancelled ? "the job was stopped before its call was reserved" : "no queue connection to reserve the call on"
                    continuation.resume(returning: Self.refusal(key, Task.isCancelled ? .cancelled : .budgetUnavailable, why))
                    return
                }
                Task {
                    if await !send(.reserve(request)) {
                        self.resolve(key, Self.refusal(key, .budgetUnavailable, "the reservation could not be sent"))
                    }
                }
            }
        } onCancel: {
            self.resolve(key, Self.refusal(key, .cancelled, "the job was stopped while its call was being reserved"))
        }
    }

    /// The queue manager's answer; one that matches no waiting call is ignored.
    public func answer(_ answer: BudgetAnswer) {
        self.resolve(Key(job: answer.job, attempt: answer.attempt, call: answer.call), answer)
    }

    private func resolve(_ key: Key, _ answer: BudgetAnswer) {
        let continuation = self.state.withLock { $0.waiting.removeValue(forKey: key) }
        continuation?.resume(returning: answer)
    }

    private static func refusal(_ key: Key, _ code: JobFailureCode, _ message: String) -> BudgetAnswer {
        BudgetAnswer(job: key.job, attempt: key.attempt, call: key.call, granted: false, code: code.rawValue, message: message)
    }
}
