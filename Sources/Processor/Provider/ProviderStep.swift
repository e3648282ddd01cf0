public import Logging
import Synchronization
public import OneoWire
public import OneoPrompt

/// The provider call with the rendered prompt, retried in place a few times when the provider
/// refused it transiently and unbilled (a 429 or 5xx, an unreachable host). A call that may
/// have been billed (a timeout, a dropped or unreadable reply) is not repeated under the same
/// reservation. What is still failing after that goes back classified: a retryable failure carries the
/// provider's `Retry-After` when it asked for longer than we wait in place, and the queue manager
/// queues the job again with its own backoff.
public struct ProviderStep: Sendable {
    public struct Policy: Sendable {
        /// Calls retried in place after the first.
        public var retries: Int
        /// The longest wait (the provider's `Retry-After`) spent in place.
        public var longestWait: Duration
        /// The first in-place wait when the provider named none; doubled each time, jittered.
        public var firstBackoff: Duration

        public init(retries: Int = 2, longestWait: Duration = .seconds(10), firstBackoff: Duration = .milliseconds(250)) {
            self.retries = retries
            self.longestWait = longestWait
            self.firstBackoff = firstBackoff
        }
    }

    /// What the calls came to, how many were retried in place, and the request they sent.
    public struct Outcome: Sendable {
        public let outcome: ProviderOutcome
        public let retries: Int
        public let request: ChatCompletionsClient.Request
    }

    let client: ChatCompletionsClient
    let policy: Policy
    /// Which parameters each model takes.
    let models: ModelCatalog
    /// The newest call, for the heartbeat's reachability evidence.
    public let calls = ProviderCallRecorder()

    public init(client: ChatCompletionsClient, policy: Policy = Policy(), models: ModelCatalog = .builtIn) {
        self.client = client
        self.policy = policy
        self.models = models
    }

    /// The request for this job's rendered prompt, its parameters as the model takes them.
    public func request(for order: JobOrder, prompt: String) -> ChatCompletionsClient.Request {
        var request = ChatCompletionsClient.request(config: order.config, model: order.model, prompt: prompt, capabilities: self.models.model(order.model))
        // The tools the queue manager granted this attempt, and only those.
        if let ticket = order.toolTicket, case .array(let definitions) = ToolCatalog.definitions(ticket.tools), !definitions.isEmpty {
            request.tools = .array(definitions)
        }
        return request
    }

    /// Sends `request`, retried in place while the provider's refusal is transient and was not
    /// billed (an error status: the reservation made for the call still covers the next try). A
    /// call that may have been billed (`unmetered`) goes back to the queue, whose next attempt
    /// reserves anew.
    public func send(_ request: ChatCompletionsClient.Request, logger: Logger) async -> Outcome {
        var retries = 0
        while true {
            let started = ContinuousClock.now
            let outcome = await self.client.complete(request)
            self.calls.record(outcome, took: ContinuousClock.now - started)
            guard case .failure(let failure) = outcome, case .retryable(let after) = failure.kind, !failure.unmetered, retries < self.policy.retries else {
                return Outcome(outcome: outcome, retries: retries, request: request)
            }
            let wait = after ?? Backoff.fullJitter(upTo: self.policy.firstBackoff * (1 << min(retries, 10)))
            // A provider asking for longer than we wait here gets its wish from the queue.
            guard wait <= self.policy.longestWait else { return Outcome(outcome: outcome, retries: retries, request: request) }
            logger.info("provider call failed; retrying in place", metadata: [
                "error.code": "\(failure.code)", "retry.in_ms": "\(wait / .milliseconds(1))", "retry.number": "\(retries + 1)",
            ])
            do {
                try await Task.sleep(for: wait)
            } catch {
                return Outcome(outcome: .failure(ChatCompletionsClient.classify(CancellationError())), retries: retries, request: request)
            }
            retries += 1
        }
    }
}

/// The processor's newest provider call: whether the provider answered at all, and how fast.
public final class ProviderCallRecorder: Sendable {
    private let newest = Mutex<(sequence: Int, reachable: Bool, code: String?, took: Duration, at: ContinuousClock.Instant)?>(nil)

    /// A call that got any HTTP answer counts as reachable; a timeout, a refused or dropped
    /// connection does not; a call we cancelled says nothing.
    func record(_ outcome: ProviderOutcome, took: Duration) {
        let entry: (Bool, String?)
        switch outcome {
        case .completed: entry = (true, nil)
        case .failure(let failure):
            switch failure.code {
            case "cancelled": return
            case "provider_unreachable", "provider_timeout", "provider_connection_lost": entry = (false, failure.code)
            default: entry = (true, failure.code)
            }
        }
        self.newest.withLock { $0 = (($0?.sequence ?? 0) + 1, entry.0, entry.1, took, .now) }
    }

    /// The newest call with its sequence number (1, 2, …: each call recorded counts one).
    public var snapshot: (sequence: Int, call: ProviderCall)? {
        self.newest.withLock { $0 }.map {
            ($0.sequence, ProviderCall(
                reachable: $0.reachable, code: $0.code, latencyMilliseconds: Int($0.took / .milliseconds(1)),
                ageMilliseconds: Int((ContinuousClock.now - $0.at) / .milliseconds(1))
            ))
        }
    }
}
