import Crypto
import Foundation
public import Hummingbird
public import Logging
import Synchronization

/// The bundled OpenAI-compatible provider: the only stand-in in our tests and the demo, at the HTTP
/// boundary. Answers `POST /v1/chat/completions` with content derived from the prompt alone (same
/// prompt, same answer), a `usage` block, and a configurable latency; records every request so
/// tests can read what was sent (`GET /sim/requests`, cleared by `DELETE /sim/requests`).
public enum ProviderSimulator {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var latency: Duration
        /// Told the port it listens on once it does (the kernel's pick, with port 0).
        public var onListening: @Sendable (Int) async -> Void

        public init(host: String = "127.0.0.1", port: Int = 18080, latency: Duration = .zero, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) {
            self.host = host
            self.port = port
            self.latency = latency
            self.onListening = onListening
        }
    }

    public static func application(_ settings: Settings, logger: Logger) -> some ApplicationProtocol {
        let log = RequestLog()
        let router = Router()
        router.post("v1/chat/completions") { request, context -> Response in
            let body = try await request.body.collect(upTo: 8 << 20)
            let data = Data(body.readableBytesView)
            log.append(authorization: request.headers[.authorization], body: data)
            guard let parsed = try? JSONDecoder().decode(ChatRequest.self, from: data) else {
                return Self.json(.badRequest, ["error": ["message": "body is not a chat completions request", "type": "invalid_request_error"]])
            }
            if settings.latency > .zero { try await Task.sleep(for: settings.latency) }
            return Self.json(.ok, Self.completion(for: parsed))
        }
        router.get("sim/requests") { _, _ -> Response in
            Self.json(.ok, log.snapshot())
        }
        router.delete("sim/requests") { _, _ -> Response in
            log.clear()
            return Response(status: .noContent)
        }
        router.get("healthz") { _, _ in "ok\n" }
        return Application(
            router: router, configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "oneo-ai-sim"),
            onServerRunning: { channel in await settings.onListening(channel.localAddress?.port ?? settings.port) },
            logger: logger
        )
    }

    struct ChatRequest: Decodable {
        struct Message: Decodable {
            let role: String
            let content: String?
        }

        let model: String
        let messages: [Message]
        let max_tokens: Int?
    }

    /// A readable answer built from the `Label: value` lines of the user message's record data
    /// block, tagged with a digest of the whole request's messages. A token is counted as four
    /// bytes, as the usual rule of thumb.
    static func completion(for request: ChatRequest) -> JSONValueOut {
        let prompt = request.messages.map { $0.content ?? "" }.joined(separator: "\n")
        let digest = SHA256.hash(data: Data(prompt.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
        let user = request.messages.last(where: { $0.role == "user" })?.content ?? ""
        var inBlock = false
        let values = user.split(separator: "\n", omittingEmptySubsequences: false).compactMap { line -> String? in
            if line == "<record_data>" { inBlock = true; return nil }
            if line == "</record_data>" { inBlock = false; return nil }
            guard inBlock, let separator = line.range(of: ": ") else { return nil }
            let value = line[separator.upperBound...].trimmingCharacters(in: .whitespaces)
            return value.isEmpty ? nil : value
        }
        var content = values.isEmpty
            ? "Summary of a \(prompt.split(separator: " ").count)-word prompt [sim \(digest)]"
            : "Summary: \(values.joined(separator: ", ")) [sim \(digest)]"
        if let limit = request.max_tokens, content.utf8.count > limit * 4 {
            content = String(decoding: content.utf8.prefix(limit * 4), as: UTF8.self)
        }
        let promptTokens = max(1, (prompt.utf8.count + 3) / 4) + 3 * request.messages.count
        let completionTokens = max(1, (content.utf8.count + 3) / 4)
        return .object([
            "id": .string("chatcmpl-sim-\(digest)"),
            "object": .string("chat.completion"),
            "created": .int(0),
            "model": .string(request.model),
            "choices": .array([.object([
                "index": .int(0),
                "message": .object(["role": .string("assistant"), "content": .string(content)]),
                "finish_reason": .string("stop"),
            ])]),
            "usage": .object([
                "prompt_tokens": .int(promptTokens),
                "completion_tokens": .int(completionTokens),
                "total_tokens": .int(promptTokens + completionTokens),
            ]),
        ])
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let data = (try? JSONEncoder().encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// A minimal JSON tree for the simulator's answers (it shares no code with the engine it stands in for).
enum JSONValueOut: Encodable {
    case string(String)
    case int(Int)
    case array([JSONValueOut])
    case object([String: JSONValueOut])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// What the simulator was sent, newest last, bounded so a long benchmark cannot exhaust memory.
final class RequestLog: Sendable {
    struct Entry: Encodable {
        let authorization: String?
        let body: String
    }

    private static let capacity = 20_000
    private let entries = Mutex<[Entry]>([])

    func append(authorization: String?, body: Data) {
        let entry = Entry(authorization: authorization, body: String(decoding: body, as: UTF8.self))
        self.entries.withLock {
            if $0.count >= Self.capacity { $0.removeFirst($0.count / 2) }
            $0.append(entry)
        }
    }

    func snapshot() -> [Entry] { self.entries.withLock { $0 } }

    func clear() { self.entries.withLock { $0.removeAll() } }
}
