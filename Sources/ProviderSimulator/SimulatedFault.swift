import Foundation
import Synchronization

/// A failure the simulator acts out instead of answering, so every retry and failure path of the
/// engine runs against real HTTP. Asked for per request by a marker anywhere in the messages,
/// `[sim-fault: 429 retry-after=2 times=1]`, or by the same words in an `X-Sim-Fault` header;
/// or for a share of all requests (`--fault-rate`).
///
/// `times=N` fails the first N requests with the same messages and answers the rest normally
/// (a transient fault that a retry gets past); without it every such request fails.
public struct SimulatedFault: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// 429 with `Retry-After` (seconds, `retry-after=`; absent when not given).
        case rateLimited = "429"
        case serverError = "500"
        case badGateway = "502"
        case unavailable = "503"
        /// 400 with an OpenAI-style `invalid_request_error`.
        case badRequest = "400"
        /// 401: the key is wrong.
        case unauthorized = "401"
        /// 429 whose code is `insufficient_quota`: waiting does not help.
        case quota
        /// Answers normally after `ms=` milliseconds (default two minutes: past any timeout).
        case slow
        /// 200 with a body that is not JSON.
        case malformed
        /// 200 without a `usage` block.
        case noUsage = "no-usage"
        /// Sends the start of a reply, then closes the connection.
        case drop
        /// 200 with an empty answer cut off by the output limit (a reasoning model that spent
        /// it all thinking).
        case truncated
        /// 200 whose answer is not the JSON a typed output asked for, every time.
        case badJSON = "bad-json"
        /// The same, but the repair request (the one that says the answer was not valid) is
        /// answered properly.
        case badJSONOnce = "bad-json-once"
    }

    public var kind: Kind
    public var times: Int?
    public var retryAfter: String?
    public var milliseconds: Int?

    public init(kind: Kind, times: Int? = nil, retryAfter: String? = nil, milliseconds: Int? = nil) {
        self.kind = kind
        self.times = times
        self.retryAfter = retryAfter
        self.milliseconds = milliseconds
    }

    /// Parses `429 retry-after=2 times=1`; nil when the words name no fault.
    public init?(words: Substring) {
        let parts = words.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard let first = parts.first, let kind = Kind(rawValue: String(first)) else { return nil }
        self.kind = kind
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            switch pair[0] {
            case "times": self.times = Int(pair[1]).map { max(0, $0) }
            // Passed through as written: the engine must survive any header value.
            case "retry-after": self.retryAfter = String(pair[1].prefix(400))
            case "ms": self.milliseconds = Int(pair[1]).map { min(max(0, $0), 600_000) }
            default: continue
            }
        }
    }

    static let marker = "[sim-fault:"

    /// The first marker in `text`, if any.
    static func marked(in text: String) -> SimulatedFault? {
        guard let start = text.range(of: Self.marker), let end = text[start.upperBound...].firstIndex(of: "]") else { return nil }
        return SimulatedFault(words: text[start.upperBound..<end])
    }
}

/// How many times each faulted request (by a digest of its messages) has failed, for `times=`.
final class FaultCounter: Sendable {
    private static let capacity = 100_000
    private let counts = Mutex<[String: Int]>([:])

    /// Whether this request should fail now: counts it, and says no once it has failed `times`.
    func shouldFail(_ digest: String, times: Int?) -> Bool {
        guard let times else { return true }
        return self.counts.withLock { counts in
            if counts.count >= Self.capacity { counts.removeAll(keepingCapacity: true) }
            let failed = counts[digest, default: 0]
            guard failed < times else { return false }
            counts[digest] = failed + 1
            return true
        }
    }
}
