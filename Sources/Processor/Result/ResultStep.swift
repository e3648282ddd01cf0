public import OneoWire
public import OneoPrompt

/// The last step: the provider's reply as the value the field gets, checked against the field's
/// output type (`OutputCheck`): a string for text, a JSON value for the rest.
public enum ResultStep {
    public static func completion(
        for order: JobOrder, value: JSONValue, usage: TokenUsage, audit: JSONValue, milliseconds: Int
    ) -> JobCompletion {
        JobCompletion(
            job: order.job, attempt: order.attempt, value: value, audit: audit,
            promptTokens: usage.promptTokens, cachedTokens: usage.cachedTokens, completionTokens: usage.completionTokens, milliseconds: milliseconds
        )
    }
}
