import Logging
public import OneoWire
public import OneoPrompt

/// The second step: one provider call with the rendered prompt. A refusal comes back classified,
/// with when to try again when it is worth trying.
public struct ProviderStep: Sendable {
    let client: ChatCompletionsClient

    public init(client: ChatCompletionsClient) {
        self.client = client
    }

    public func call(_ order: JobOrder, prompt: String) async -> ProviderOutcome {
        await self.client.complete(ChatCompletionsClient.request(config: order.config, model: order.model, prompt: prompt))
    }

    /// 1 s, 2 s, 4 s … capped at 60 s: the wait before a retry the provider did not time.
    public static func backoff(attempt: Int) -> Duration {
        .seconds(min(60, 1 << min(max(attempt - 1, 0), 6)))
    }
}
