public import Logging
public import OneoWire
public import OneoPrompt

/// One job in the processor: a sequence of named steps (context → cache → budget → provider →
/// result; the tool loop slots in beside the provider), each a small type in its own folder. It
/// returns the report for the queue manager and never touches a database.
public struct JobRunner: Sendable {
    let context: PromptContext
    let provider: ProviderStep
    /// Reserves each call of a budgeted job before it is made.
    let budget: BudgetGate
    /// The tenant's results, by request; nil: none.
    let cache: ResultCache?
    /// Identical requests in flight at once share one call.
    let flights = SingleFlight()
    /// The connection to the supervisor's tool router; nil: no tools.
    let tools: ToolClient?

    public init(context: PromptContext, provider: ProviderStep, budget: BudgetGate = BudgetGate(), cache: ResultCache? = nil, tools: ToolClient? = nil) {
        self.context = context
        self.provider = provider
        self.budget = budget
        self.cache = cache
        self.tools = tools
    }

    /// nil when the call may be made; else the failure to report (no call was made).
    private func reserve(_ order: JobOrder, _ request: ChatCompletionsClient.Request, call: Int, logger: Logger) async -> JobFailure? {
        guard order.budgeted else { return nil }
        let answer = await self.budget.reserve(BudgetRequest(job: order.job, attempt: order.attempt, call: call, bound: request.bound))
        guard !answer.granted else { return nil }
        let code = answer.code ?? JobFailureCode.budgetUnavailable.rawValue
        logger.notice("call not reserved; not made", metadata: ["error.code": "\(code)", "call": "\(call)"])
        return JobFailure(
            job: order.job, attempt: order.attempt, code: code, message: answer.message ?? "the call could not be reserved",
            retryable: code == JobFailureCode.budgetUnavailable.rawValue
        )
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

        let request = self.provider.request(for: order, prompt: prepared.prompt)
        guard let cache = self.cache, cache.isEnabled, order.config.cacheDuration > 0,
              let digest = CacheKey.digest(of: request, config: order.config) else {
            return await self.call(order, prepared, request, started: started, logger: logger)
        }
        // A hit, or the value of an identical request already in the air: no call, no cost.
        let key = cache.key(digest)
        if let value = await cache.get(key) {
            logger.info("cache hit", metadata: ["cache.key": "\(digest.prefix(16))"])
            return .completed(self.cached(order, value, prepared, started: started))
        }
        switch await self.flights.join(key) {
        case .follower(let value?):
            logger.info("an identical request was in flight; its answer is ours", metadata: ["cache.key": "\(digest.prefix(16))"])
            return .completed(self.cached(order, value, prepared, started: started))
        case .follower(nil):
            // Stopped while waiting: no call (it would be charged for nothing sent).
            if Task.isCancelled {
                return .failed(JobFailure(
                    job: order.job, attempt: order.attempt, code: JobFailureCode.cancelled.rawValue,
                    message: "the job was stopped while an identical request was in flight", retryable: false
                ))
            }
            return await self.call(order, prepared, request, started: started, logger: logger)
        case .leader:
            let report = await self.call(order, prepared, request, started: started, logger: logger)
            guard case .completed(let completion) = report else {
                self.flights.finish(key, nil)
                return report
            }
            // Followers first: they do not wait on Redis.
            self.flights.finish(key, completion.value)
            await cache.set(key, completion.value, seconds: order.config.cacheDuration)
            return report
        }
    }

    /// The artifacts a job keeps: names unique (the last of a name wins), within the count and
    /// the total size.
    static func kept(_ artifacts: [JobArtifact]) -> [JobArtifact] {
        var byName: [String: JobArtifact] = [:]
        var order: [String] = []
        for artifact in artifacts {
            if byName.updateValue(artifact, forKey: artifact.name) == nil { order.append(artifact.name) }
        }
        var kept: [JobArtifact] = []
        var total = 0
        for name in order.suffix(JobArtifact.maximumCount) {
            guard let artifact = byName[name] else { continue }
            let size = artifact.data.utf8.count / 4 * 3
            guard total + size <= JobArtifact.maximumTotalBytes else { continue }
            total += size
            kept.append(artifact)
        }
        return kept
    }

    /// A job answered from the cache: the value as stored, no tokens, no cost.
    private func cached(_ order: JobOrder, _ value: JSONValue, _ prepared: PromptContext.Prepared, started: ContinuousClock.Instant) -> JobCompletion {
        var completion = ResultStep.completion(
            for: order, value: value, usage: TokenUsage(promptTokens: 0, cachedTokens: 0, completionTokens: 0), audit: prepared.audit,
            milliseconds: Int((ContinuousClock.now - started) / .milliseconds(1))
        )
        completion.cacheHit = true
        return completion
    }

    /// The budget, provider and result steps: the job's calls and what they came to.
    private func call(
        _ order: JobOrder, _ prepared: PromptContext.Prepared, _ request: ChatCompletionsClient.Request, started: ContinuousClock.Instant, logger: Logger
    ) async -> ProcessorReport {
        // The tool loop: while the model asks for tools (and rounds and bytes remain), run them
        // and send their results back; every call is reserved first, like the first.
        var current = request
        var callNumber = 1
        var rounds = 0
        var resultBytes = 0
        var toolRecords: [ToolCallRecord] = []
        var artifacts: [JobArtifact] = []
        var earlier = TokenUsage(promptTokens: 0, cachedTokens: 0, completionTokens: 0)
        var called: ProviderStep.Outcome
        while true {
            if var refused = await self.reserve(order, current, call: callNumber, logger: logger) {
                if callNumber > 1 {
                    refused.usage = earlier
                    refused.toolCalls = toolRecords
                }
                return .failed(refused)
            }
            callNumber += 1
            called = await self.provider.send(current, logger: logger)
            guard case .completed(let reply) = called.outcome, !reply.toolCalls.isEmpty, current.tool_choice != "none",
                  let ticket = order.toolTicket, let tools = self.tools else { break }
            earlier = earlier.adding(TokenUsage(promptTokens: reply.promptTokens, cachedTokens: reply.cachedTokens, completionTokens: reply.completionTokens))
            let round = await ToolRound(client: tools, ticket: ticket, job: order.job, attempt: order.attempt).run(reply.toolCalls)
            rounds += 1
            resultBytes += round.resultBytes
            toolRecords += round.records
            artifacts += round.artifacts
            logger.info("tool round", metadata: ["round": "\(rounds)", "tools": "\(round.records.map(\.tool))", "result.bytes": "\(round.resultBytes)"])
            current = current.with(messages: current.messages + round.messages)
            if rounds >= ToolLoop.maximumRounds || resultBytes >= ToolLoop.totalResultBytes { current.tool_choice = "none" }
        }
        // Every failure from here on carries the tool calls made: those that ran are paid for.
        let ranTools = toolRecords
        func failed(_ failure: JobFailure) -> ProcessorReport {
            var failure = failure
            failure.toolCalls = ranTools
            return .failed(failure)
        }
        switch called.outcome {
        case .failure(var failure):
            if rounds > 0 { failure.usage = (failure.usage ?? TokenUsage(promptTokens: 0, cachedTokens: 0, completionTokens: 0)).adding(earlier) }
            let (retryable, after): (Bool, Duration?) = switch failure.kind {
            case .permanent: (false, nil)
            case .retryable(let after): (true, after)
            }
            logger.warning("provider call failed", metadata: ["error.code": "\(failure.code)", "retryable": "\(retryable)", "provider.retries": "\(called.retries)"])
            // The provider's text never carries what we sent it back into the job row.
            let message = RequestEcho.strip(failure.message, sent: [prepared.prompt, order.config.systemMessage ?? ""])
            var reported = JobFailure(
                job: order.job, attempt: order.attempt, code: failure.code, message: message, retryable: retryable,
                retryAfterMilliseconds: after.map { Int($0 / .milliseconds(1)) }, providerRetries: called.retries
            )
            reported.usage = failure.usage
            reported.unmetered = failure.unmetered
            return failed(reported)
        case .completed(let reply):
            var usage = TokenUsage(promptTokens: reply.promptTokens, cachedTokens: reply.cachedTokens, completionTokens: reply.completionTokens).adding(earlier)
            var value = OutputCheck.value(of: reply.content, for: order.config)
            if case .failure = value, reply.finishReason == "length" {
                // Cut off by the output limit: a repair with the same limit would be cut off too.
                var failure = JobFailure(
                    job: order.job, attempt: order.attempt, code: "output_truncated",
                    message: "the reply was cut off by max_tokens before it fit the output type; raise ai_config.max_tokens", retryable: false
                )
                failure.usage = usage
                return failed(failure)
            }
            if case .failure(let problem) = value {
                // One repair: the model sees its answer and what is wrong with it.
                logger.info("typed output invalid; asking once more", metadata: ["problem": "\(problem.message)"])
                let repair = called.request.repairing(reply.content, problem: problem.message)
                if var refused = await self.reserve(order, repair, call: callNumber, logger: logger) {
                    refused.usage = usage
                    return failed(refused)
                }
                let repaired = await self.provider.send(repair, logger: logger)
                switch repaired.outcome {
                case .failure(let failure):
                    let retryable: Bool
                    let after: Duration?
                    switch failure.kind {
                    case .permanent: (retryable, after) = (false, nil)
                    case .retryable(let wait): (retryable, after) = (true, wait)
                    }
                    var reported = JobFailure(
                        job: order.job, attempt: order.attempt, code: failure.code,
                        message: RequestEcho.strip(failure.message, sent: [prepared.prompt, order.config.systemMessage ?? ""]),
                        retryable: retryable, retryAfterMilliseconds: after.map { Int($0 / .milliseconds(1)) }, providerRetries: repaired.retries
                    )
                    reported.unmetered = failure.unmetered
                    // The first call was answered and billed.
                    reported.usage = TokenUsage(
                        promptTokens: usage.promptTokens + (failure.usage?.promptTokens ?? 0), cachedTokens: usage.cachedTokens + (failure.usage?.cachedTokens ?? 0),
                        completionTokens: usage.completionTokens + (failure.usage?.completionTokens ?? 0)
                    )
                    return failed(reported)
                case .completed(let second):
                    usage = TokenUsage(
                        promptTokens: usage.promptTokens + second.promptTokens, cachedTokens: usage.cachedTokens + second.cachedTokens,
                        completionTokens: usage.completionTokens + second.completionTokens
                    )
                    value = OutputCheck.value(of: second.content, for: order.config)
                }
            }
            switch value {
            case .failure(let problem):
                var failure = JobFailure(
                    job: order.job, attempt: order.attempt, code: "output_invalid",
                    message: "the reply did not match the field's output type after one repair: \(problem.message)", retryable: false
                )
                failure.usage = usage
                return failed(failure)
            case .success(let checked):
                let milliseconds = Int((ContinuousClock.now - started) / .milliseconds(1))
                logger.info("job finished", metadata: ["job.ms": "\(milliseconds)", "tokens": "\(usage.promptTokens + usage.completionTokens)"])
                var completion = ResultStep.completion(for: order, value: checked, usage: usage, audit: prepared.audit, milliseconds: milliseconds)
                completion.toolCalls = toolRecords
                completion.artifacts = Self.kept(artifacts)
                return .completed(completion)
            }
        }
    }
}
