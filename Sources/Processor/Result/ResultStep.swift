public import OneoWire
public import OneoPrompt

/// The last step: the provider's reply as the value the field gets. JSON output types keep a
/// reply that parses as JSON; anything else is stored as the text it is.
public enum ResultStep {
    public static func completion(
        for order: JobOrder, reply: ChatCompletionsClient.Completion, audit: JSONValue, milliseconds: Int
    ) -> JobCompletion {
        let value: JSONValue = order.config.outputType == .text
            ? .string(reply.content)
            : ((try? JSONValue.parse(Array(reply.content.utf8))) ?? .string(reply.content))
        return JobCompletion(
            job: order.job, attempt: order.attempt, value: value, audit: audit,
            promptTokens: reply.promptTokens, cachedTokens: reply.cachedTokens, completionTokens: reply.completionTokens, milliseconds: milliseconds
        )
    }
}
