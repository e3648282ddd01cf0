public import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1
import NIOPosix
public import OneoWire
public import OneoPrompt

/// One call to an OpenAI-compatible `POST {base_url}/chat/completions`. Provider refusals are
/// values (`ProviderOutcome.failure`) that carry their retry class; only our own bugs throw.
public struct ChatCompletionsClient: Sendable {
    public struct Request: Sendable, Encodable {
        public struct Message: Sendable, Encodable {
            public let role: String
            /// Absent on an assistant turn that only calls tools.
            public let content: String?
            /// The assistant's tool calls, sent back with their results.
            public var tool_calls: [ToolCall]? = nil
            /// On a `tool` message: the call it answers.
            public var tool_call_id: String? = nil

            public init(role: String, content: String?, tool_calls: [ToolCall]? = nil, tool_call_id: String? = nil) {
                self.role = role
                self.content = content
                self.tool_calls = tool_calls
                self.tool_call_id = tool_call_id
            }

            /// Every byte of the message the provider counts: role, text, calls, call id.
            var countedBytes: Int {
                let calls = self.tool_calls.map { (try? JSONEncoder().encode($0).count) ?? 0 } ?? 0
                return self.role.utf8.count + (self.content?.utf8.count ?? 0) + calls + (self.tool_call_id?.utf8.count ?? 0)
            }
        }

        /// A function call the model asked for (OpenAI's `tool_calls` entry).
        public struct ToolCall: Sendable, Codable, Hashable {
            public struct Function: Sendable, Codable, Hashable {
                public let name: String
                /// JSON text, as the model wrote it: parsed and checked by the executor's shape.
                public let arguments: String
            }

            public let id: String
            public var type: String = "function"
            public let function: Function
        }

        public let model: String
        public let messages: [Message]
        /// Absent for models that refuse one (reasoning models).
        public let temperature: Double?
        /// One of the two, as the model takes it (absent ones are not encoded).
        public let max_tokens: Int?
        public let max_completion_tokens: Int?
        /// JSON mode, or strict structured output with a schema (typed output types).
        public let response_format: JSONValue?
        /// The function tools offered (a field with tools on), or absent.
        public var tools: JSONValue? = nil
        /// `none` once the tool loop's rounds are spent: the model must answer.
        public var tool_choice: String? = nil

        /// What this request can cost at most, in tokens (`CallBound`): every message's bytes
        /// with its role and framing, the reply format (its schema counts as input), the output
        /// limit.
        public var bound: CallBound {
            let format = self.response_format.map { (try? JSONEncoder().encode($0).count) ?? 0 } ?? 0
            let tools = self.tools.map { (try? JSONEncoder().encode($0).count) ?? 0 } ?? 0
            return CallBound(
                messageBytes: self.messages.map(\.countedBytes), extraBytes: format + tools,
                outputLimit: self.max_tokens ?? self.max_completion_tokens ?? 0
            )
        }

        /// The same request with the model's answer and a correction appended: the one repair
        /// a typed output gets.
        public func repairing(_ answer: String, problem: String) -> Request {
            var messages = self.messages
            // The answer goes back as the model's own turn, cut to 4 KiB (enough to see what went
            // wrong, never a doubled prompt); the problem is our text, bounded.
            messages.append(.init(role: "assistant", content: String(decoding: answer.utf8.prefix(4_096), as: UTF8.self)))
            messages.append(.init(role: "user", content: "That answer is not valid (\(String(problem.prefix(200)))). Answer again with only the valid JSON."))
            return self.with(messages: messages)
        }

        /// The same request with other messages (the tool loop's next turn, a repair).
        public func with(messages: [Message]) -> Request {
            var next = Request(
                model: self.model, messages: messages, temperature: self.temperature, max_tokens: self.max_tokens,
                max_completion_tokens: self.max_completion_tokens, response_format: self.response_format
            )
            next.tools = self.tools
            next.tool_choice = self.tool_choice
            return next
        }
    }

    public struct Completion: Sendable, Hashable {
        public let content: String
        public let promptTokens: Int
        /// Of the prompt tokens, those the provider served from its prompt cache (cheaper).
        public let cachedTokens: Int
        public let completionTokens: Int
        /// `length` when the output limit cut the answer.
        public var finishReason: String? = nil
        /// The tools the model asked to call (a request that offered tools).
        public var toolCalls: [Request.ToolCall] = []
    }

    public let baseURL: String
    public let key: ProviderKey?
    public let http: HTTPClient
    public let timeout: TimeAmount

    public init(baseURL: String, key: ProviderKey?, http: HTTPClient = .shared, timeout: TimeAmount = .seconds(60)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.key = key
        self.http = http
        self.timeout = timeout
    }

    /// The request for a model, its parameters as the model takes them (`capabilities` from the
    /// catalog; without an entry, the classic `max_tokens` and `temperature`).
    public static func request(config: AIFieldConfig, model: String, prompt: String, capabilities: ModelCatalog.Model?) -> Request {
        var messages: [Request.Message] = []
        // The preamble says what of the prompt is fenced data; the field's own message follows it.
        var system = PromptFence.systemMessage(config.systemMessage)
        var format: JSONValue?
        // Only what the model takes (a field stored before the catalog said otherwise may ask
        // for more): the instruction then rides in the system message, and the reply is checked.
        let takes = capabilities?.responseFormats ?? .jsonSchema
        if let schema = config.responseSchema, takes >= .jsonSchema {
            format = ["type": "json_schema", "json_schema": ["name": "field_value", "schema": schema, "strict": true]]
        } else if config.outputType != .text {
            if takes >= .jsonObject { format = ["type": "json_object"] }
            // JSON mode asks for the word JSON in the messages.
            system += "\n\nAnswer with one JSON object."
            if let schema = config.responseSchema, let text = try? JSONEncoder().encode(schema) {
                system += " It must follow this JSON Schema: " + String(decoding: text, as: UTF8.self)
            }
        }
        messages.append(.init(role: "system", content: system))
        messages.append(.init(role: "user", content: prompt))
        let completionParameter = capabilities?.tokenParameter == .maxCompletionTokens
        return Request(
            model: model, messages: messages, temperature: capabilities?.temperature == false ? nil : config.temperature,
            max_tokens: completionParameter ? nil : config.maxTokens, max_completion_tokens: completionParameter ? config.maxTokens : nil,
            response_format: format
        )
    }

    public func complete(_ body: Request) async -> ProviderOutcome {
        var request = HTTPClientRequest(url: self.baseURL + "/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let key = self.key { request.headers.add(name: "Authorization", value: "Bearer \(key.secret)") }
        do {
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        } catch {
            return .failure(ProviderFailure(kind: .permanent, code: "request_unencodable", message: "cannot encode the request"))
        }
        let response: HTTPClientResponse
        let payload: ByteBuffer
        do {
            response = try await self.http.execute(request, timeout: self.timeout)
        } catch {
            return .failure(Self.classify(error))
        }
        do {
            payload = try await response.body.collect(upTo: 8 << 20)
        } catch {
            // The provider answered and its reply broke off (or ran past 8 MiB): it did the work,
            // and may bill it.
            var failure = Self.classify(error)
            if failure.code != "cancelled" {
                failure = ProviderFailure(kind: .retryable(after: nil), code: "provider_connection_lost", message: "the provider's reply broke off or was larger than 8 MiB")
            }
            return .failure(failure)
        }
        let status = response.status.code
        guard status == 200 else {
            let retryAfter = Self.retryAfter(response.headers.first(name: "Retry-After"))
            let body = Self.providerError(payload)
            let message = body?.message ?? "HTTP \(status)"
            // A 429 for an exhausted quota will not pass by waiting (OpenAI's `insufficient_quota`).
            if body?.code == "insufficient_quota" {
                return .failure(ProviderFailure(kind: .permanent, code: "insufficient_quota", message: message))
            }
            switch status {
            case 429, 500...599, 408:
                return .failure(ProviderFailure(kind: .retryable(after: retryAfter), code: "provider_http_\(status)", message: message))
            default:
                return .failure(ProviderFailure(kind: .permanent, code: "provider_http_\(status)", message: message))
            }
        }
        struct Reply: Decodable {
            struct Choice: Decodable {
                struct Message: Decodable {
                    let content: String?
                    let tool_calls: [Request.ToolCall]?
                }
                let message: Message
                let finish_reason: String?
            }
            struct Usage: Decodable {
                let prompt_tokens: Int
                let completion_tokens: Int
                /// Informational: a shape we do not expect reads as none cached (charging the
                /// whole prompt at the full price over-counts, never under-counts).
                let cachedTokens: Int

                private enum CodingKeys: String, CodingKey { case prompt_tokens, completion_tokens, prompt_tokens_details }
                private enum DetailKeys: String, CodingKey { case cached_tokens }

                init(from decoder: any Decoder) throws {
                    let container = try decoder.container(keyedBy: CodingKeys.self)
                    self.prompt_tokens = try container.decode(Int.self, forKey: .prompt_tokens)
                    self.completion_tokens = try container.decode(Int.self, forKey: .completion_tokens)
                    let details = try? container.nestedContainer(keyedBy: DetailKeys.self, forKey: .prompt_tokens_details)
                    self.cachedTokens = (try? details?.decodeIfPresent(Int.self, forKey: .cached_tokens)) ?? 0
                }
            }
            let choices: [Choice]
            let usage: Usage?
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(payload.readableBytesView)), let first = reply.choices.first else {
            return .failure(ProviderFailure(kind: .retryable(after: nil), code: "provider_malformed", message: "provider answered 200 with an unreadable body"))
        }
        guard let usage = reply.usage else {
            return .failure(ProviderFailure(kind: .permanent, code: "provider_no_usage", message: "provider answered without a usage block: cost cannot be known"))
        }
        // Counts a provider could not have meant (negative, or past any context) would overflow
        // the cost or break the commit (review L19, L20): the reply is refused, not stored.
        guard (0...Self.maximumTokens).contains(usage.prompt_tokens), (0...Self.maximumTokens).contains(usage.completion_tokens) else {
            return .failure(ProviderFailure(kind: .permanent, code: "provider_bad_usage", message: "provider reported token counts outside 0...\(Self.maximumTokens)"))
        }
        // PostgreSQL's text and jsonb hold no U+0000: a model that writes one would fail the
        // whole group commit its result rides in.
        let content = (first.message.content ?? "").replacingOccurrences(of: "\u{0}", with: "\u{FFFD}")
        // A reasoning model can spend the whole output limit thinking: an empty answer cut off
        // by the limit is not a value to store over the field's.
        if (first.message.content ?? "").isEmpty, first.message.tool_calls?.isEmpty ?? true, first.finish_reason == "length" {
            var failure = ProviderFailure(
                kind: .permanent, code: "output_truncated",
                message: "the model used all of max_tokens before writing an answer (reasoning models count their reasoning in it); raise ai_config.max_tokens"
            )
            failure.usage = TokenUsage(
                promptTokens: usage.prompt_tokens, cachedTokens: min(max(0, usage.cachedTokens), usage.prompt_tokens), completionTokens: usage.completion_tokens
            )
            return .failure(failure)
        }
        // Cached tokens are part of the prompt's: held to 0...prompt.
        let cached = min(max(0, usage.cachedTokens), usage.prompt_tokens)
        return .completed(Completion(
            content: content, promptTokens: usage.prompt_tokens, cachedTokens: cached, completionTokens: usage.completion_tokens,
            finishReason: first.finish_reason, toolCalls: first.message.tool_calls ?? []
        ))
    }

    /// More tokens than any model's context and output together.
    static let maximumTokens = 10_000_000

    /// `Retry-After` as seconds, 0 to an hour; anything else (a date, `nan`, `1e300`, garbage)
    /// is ignored and the usual backoff applies (review L20: `Duration.seconds(.infinity)` traps).
    public static func retryAfter(_ header: String?) -> Duration? {
        guard let header, header.utf8.count <= 16, let seconds = Double(header.trimmingCharacters(in: .whitespaces)), seconds.isFinite, seconds >= 0 else { return nil }
        return .milliseconds(Int64(min(seconds, 3_600) * 1_000))
    }

    /// A transport failure, classified: each a stable code an operator can search for, retried
    /// (the provider may never have seen the request, or may answer next time), except our own
    /// cancellation, which is final.
    static func classify(_ error: any Error) -> ProviderFailure {
        if Task.isCancelled || error is CancellationError || (error as? HTTPClientError) == .cancelled {
            return ProviderFailure(kind: .permanent, code: "cancelled", message: "the call was aborted: the job was cancelled or passed its deadline")
        }
        if error is HTTPParserError {
            // The reply stopped (or went wrong) part-way: the connection closed mid-body.
            return ProviderFailure(kind: .retryable(after: nil), code: "provider_connection_lost", message: "the provider's reply was cut off or garbled part-way")
        }
        let (code, message): (String, String) = switch error as? HTTPClientError {
        case .connectTimeout?:
            ("provider_unreachable", "the provider could not be connected to within the timeout")
        case .deadlineExceeded?, .readTimeout?, .writeTimeout?:
            ("provider_timeout", "the provider did not answer within processors.provider_timeout_ms")
        case .remoteConnectionClosed?, .bodyLengthMismatch?, .uncleanShutdown?:
            ("provider_connection_lost", "the provider's connection closed before the reply was complete")
        default:
            // A connection never made (refused, no such host, TLS refused) is known unbilled;
            // anything else may have failed after the request went out.
            Self.neverConnected(error)
                ? ("provider_unreachable", "provider request failed: \(Self.describe(error))")
                : ("provider_connection_lost", "provider request failed after it may have been sent: \(Self.describe(error))")
        }
        return ProviderFailure(kind: .retryable(after: nil), code: code, message: message)
    }

    /// Whether the error says the connection was never made: no request can have gone out.
    static func neverConnected(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let channel = error as? ChannelError, case .connectTimeout = channel { return true }
        if let io = error as? IOError, [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, ENOENT].contains(io.errnoCode) { return true }
        if let http = error as? HTTPClientError, [HTTPClientError.connectTimeout, .invalidURL, .emptyHost].contains(http) { return true }
        return false
    }

    /// The `error.message` and `error.code` of an OpenAI-style error body, the message cut
    /// short; never the request.
    static func providerError(_ payload: ByteBuffer) -> (message: String?, code: String?)? {
        struct ErrorBody: Decodable {
            struct Inner: Decodable { let message: String?; let code: String? }
            let error: Inner?
        }
        guard let body = try? JSONDecoder().decode(ErrorBody.self, from: Data(payload.readableBytesView)), let inner = body.error else {
            return nil
        }
        let code = inner.code.flatMap { $0.utf8.count <= 64 && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") } ? $0 : nil }
        return (inner.message.map(Self.boundedMessage), code)
    }

    /// A provider's error message as the job row keeps it.
    static func boundedMessage(_ message: String) -> String {
        // What the job row keeps and any `read` token may see: no key or other secret a gateway
        // echoed (review L2) — redacted before the cut, so no part of one is left by it — then 300
        // scalars, without control or format characters (no U+202E turning the text around).
        let bounded = String(String.UnicodeScalarView(message.unicodeScalars.prefix(4_096)))
        let redacted = SensitiveValueDetector().redact(bounded).text
        return PlainText.bounded(redacted, 300)
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return error.shortDescription }
        return String(describing: type(of: error))
    }
}

/// What a provider call came to.
public enum ProviderOutcome: Sendable {
    case completed(ChatCompletionsClient.Completion)
    case failure(ProviderFailure)
}

/// A provider call that did not complete, with its retry class: retry loops read `kind`, never
/// the message.
public struct ProviderFailure: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case retryable(after: Duration?)
        case permanent
    }

    public let kind: Kind
    public let code: String
    public let message: String
    /// Tokens the provider reported although the call failed (it bills them).
    public var usage: TokenUsage?
    /// The provider may have billed this call for an amount nobody knows: the request may have
    /// gone out and no usable answer came back (a timeout, a reply cut off or unreadable, no
    /// usage, our own abort, a gateway's 502/504/524 whose upstream may have finished). Such a
    /// call is charged its reservation and never retried in place. Only a connection that was
    /// never made (`provider_unreachable`) and the provider's own refusals are known unbilled.
    public var unmetered: Bool {
        switch self.code {
        case "provider_timeout", "provider_connection_lost", "provider_malformed", "provider_no_usage", "provider_bad_usage", "cancelled",
             "provider_http_502", "provider_http_504", "provider_http_524": true
        default: false
        }
    }

    public init(kind: Kind, code: String, message: String, usage: TokenUsage? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.usage = usage
    }
}
