public import Logging
public import OneoWire
public import OneoPrompt

/// One job in the processor: a sequence of named steps (context → provider → result; cache,
/// budget and the tool loop slot in between), each a small type in its own folder. It returns
/// the report for the queue manager and never touches a database.
public struct JobRunner: Sendable {
    let context: PromptContext
    let provider: ProviderStep

    public init(context: PromptContext, provider: ProviderStep) {
        self.context = context
        self.provider = provider
    }

    public func run(_ order: JobOrder, logger: Logger) async -> ProcessorReport {
        var logger = logger
        logger[metadataKey: "job.id"] = "\(order.job)"
        logger[metadataKey: "job.attempt"] = "\(order.attempt)"
        let started = ContinuousClock.now

        let prepared: PromptContext.Prepared
        switch self.context.prepare(order) {
        case .success(let ready): prepared = ready
        case .failure(let refusal):
            logger.warning("job refused before the provider call", metadata: ["error.code": "\(refusal.code.rawValue)"])
            return .failed(JobFailure(job: order.job, attempt: order.attempt, code: refusal.code.rawValue, message: refusal.message, retryable: false))
        }
        let rendered = prepared.rendered
        logger.info("prompt rendered", metadata: [
            "prompt.bytes": "\(prepared.prompt.utf8.count)", "fields.excluded": "\(rendered.excludedFieldCount)",
            "keys.excluded": "\(rendered.excludedKeys)", "fields.dropped": "\(rendered.droppedFields.count)",
            "values.redacted": "\(rendered.redactions.values.reduce(0, +))",
        ])

        let called = await self.provider.call(order, prompt: prepared.prompt, logger: logger)
        switch called.outcome {
        case .failure(let failure):
            let (retryable, after): (Bool, Duration?) = switch failure.kind {
            case .permanent: (false, nil)
            case .retryable(let after): (true, after)
            }
            logger.warning("provider call failed", metadata: ["error.code": "\(failure.code)", "retryable": "\(retryable)", "provider.retries": "\(called.retries)"])
            // The provider's text never carries what we sent it back into the job row.
            let message = RequestEcho.strip(failure.message, sent: [prepared.prompt, order.config.systemMessage ?? ""])
            return .failed(JobFailure(
                job: order.job, attempt: order.attempt, code: failure.code, message: message, retryable: retryable,
                retryAfterMilliseconds: after.map { Int($0 / .milliseconds(1)) }, providerRetries: called.retries
            ))
        case .completed(let reply):
            let elapsed = ContinuousClock.now - started
            let milliseconds = Int(elapsed / .milliseconds(1))
            logger.info("job finished", metadata: ["job.ms": "\(milliseconds)", "tokens": "\(reply.promptTokens + reply.completionTokens)"])
            return .completed(ResultStep.completion(for: order, reply: reply, audit: prepared.audit, milliseconds: milliseconds))
        }
    }
}
