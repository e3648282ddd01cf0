public import OneoWire
public import OneoPrompt

/// The last step: the provider's reply as the value the field gets, checked against the field's
/// output type (`OutputCheck`): a string for text, a JSON value for the rest.
public enum ResultStep {
    public static func completion(
        for order: JobOrder, value: JSONValue, usage: (prompt: Int, cached: Int, completion: Int), audit: JSONValue, milliseconds: Int
    ) -> JobCompletion {
        JobCompletion(
            job: order.job, attempt: order.attempt, value: value, audit: audit,
            promptTokens: usage.prompt, cachedTokens: usage.cached, completionTokens: usage.completion, milliseconds: milliseconds
        )
    }
}
