/// A condition that did not hold by its deadline.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let what: String
    public let after: Duration
    public var description: String { "timed out after \(self.after) waiting for \(self.what)" }
}

/// Waits until `condition` holds, checking every `interval`, failing after `timeout`. The way
/// tests synchronise with other processes: on a condition, never on a fixed sleep.
public func waitUntil(
    _ what: String,
    timeout: Duration = .seconds(30),
    interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return }
        guard ContinuousClock.now < deadline else { throw DeadlineExceeded(what: what, after: timeout) }
        try await Task.sleep(for: interval)
    }
}
