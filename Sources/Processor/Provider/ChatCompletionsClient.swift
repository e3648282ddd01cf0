public import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1
public import OneoCore

/// One call to an OpenAI-compatible `POST {base_url}/chat/completions`. Provider refusals are
/// values (`ProviderOutcome.failure`) that carry their retry class; only our own bugs throw.
public struct ChatCompletionsClient: Sendable {
    public struct Request: Sendable, Encodable {
        public struct Message: Sendable, Encodable {
            public let role: String
            public let content: String
        }

        public let model: String
        public let messages: [Message]
        public let temperature: Double
        public let max_tokens: Int
    }

    public struct Completion: Sendable, Hashable {
        public let content: String
        public let promptTokens: Int
        public let completionTokens: Int
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

    public static func request(config: AIFieldConfig, model: String, prompt: String) -> Request {
        var messages: [Request.Message] = []
        // The preamble says what of the prompt is fenced data; the field's own message follows it.
        messages.append(.init(role: "system", content: PromptFence.systemMessage(config.systemMessage)))
        messages.append(.init(role: "user", content: prompt))
        return Request(model: model, messages: messages, temperature: config.temperature, max_tokens: config.maxTokens)
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
            payload = try await response.body.collect(upTo: 8 << 20)
        } catch {
            return .failure(ProviderFailure(kind: .retryable(after: nil), code: "provider_unreachable", message: "provider request failed: \(Self.describe(error))"))
        }
        let status = response.status.code
        guard status == 200 else {
            let retryAfter = response.headers.first(name: "Retry-After").flatMap(Double.init).map { Duration.seconds($0) }
            let message = Self.providerMessage(payload) ?? "HTTP \(status)"
            switch status {
            case 429, 500...599, 408:
                return .failure(ProviderFailure(kind: .retryable(after: retryAfter), code: "provider_http_\(status)", message: message))
            default:
                return .failure(ProviderFailure(kind: .permanent, code: "provider_http_\(status)", message: message))
            }
        }
        struct Reply: Decodable {
            struct Choice: Decodable {
                struct Message: Decodable { let content: String? }
                let message: Message
            }
            struct Usage: Decodable { let prompt_tokens: Int; let completion_tokens: Int }
            let choices: [Choice]
            let usage: Usage?
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(payload.readableBytesView)), let first = reply.choices.first else {
            return .failure(ProviderFailure(kind: .retryable(after: nil), code: "provider_malformed", message: "provider answered 200 with an unreadable body"))
        }
        guard let usage = reply.usage else {
            return .failure(ProviderFailure(kind: .permanent, code: "provider_no_usage", message: "provider answered without a usage block: cost cannot be known"))
        }
        return .completed(Completion(content: first.message.content ?? "", promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens))
    }

    /// The `error.message` of an OpenAI-style error body, cut short; never the request.
    private static func providerMessage(_ payload: ByteBuffer) -> String? {
        struct ErrorBody: Decodable {
            struct Inner: Decodable { let message: String? }
            let error: Inner?
        }
        guard let body = try? JSONDecoder().decode(ErrorBody.self, from: Data(payload.readableBytesView)), let message = body.error?.message else {
            return nil
        }
        return String(message.prefix(300))
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
}
