import Foundation
public import OneoWire
import OneoPrompt

/// One round of the tool loop: the model's tool calls run through the router, their results
/// turned into `tool` messages marked as data (the model reads them as it reads record data:
/// never as instructions), each bounded in bytes.
struct ToolRound {
    let client: ToolClient
    let ticket: ToolTicket
    let job: JobID
    let attempt: Int

    struct Outcome {
        let messages: [ChatCompletionsClient.Request.Message]
        let records: [ToolCallRecord]
        let resultBytes: Int
        /// Files the calls made, checked (names, base64, sizes), for the job to keep.
        let artifacts: [JobArtifact]
    }

    /// The most bytes of a call's arguments that are run (and sent back with the model's turn).
    static let argumentBytes = 16 << 10

    func run(_ asked: [ChatCompletionsClient.Request.ToolCall]) async -> Outcome {
        // The turn sent back holds the calls that are answered: at most the round's bound, each
        // with its arguments bounded, so the conversation (and its reservation) stays bounded.
        let calls = asked.prefix(ToolLoop.maximumCallsPerRound).map { call in
            call.function.arguments.utf8.count <= Self.argumentBytes ? call
                : ChatCompletionsClient.Request.ToolCall(id: String(call.id.prefix(128)), function: .init(name: String(call.function.name.prefix(64)), arguments: "{}"))
        }
        var messages: [ChatCompletionsClient.Request.Message] = [.init(role: "assistant", content: nil, tool_calls: calls)]
        var records: [ToolCallRecord] = asked.dropFirst(ToolLoop.maximumCallsPerRound).map { call in
            ToolCallRecord(tool: String(call.function.name.prefix(64)), milliseconds: 0, resultBytes: 0, error: "past \(ToolLoop.maximumCallsPerRound) calls in one answer; not run")
        }
        var artifacts: [JobArtifact] = []
        var bytes = 0
        for (index, call) in calls.enumerated() {
            let started = ContinuousClock.now
            let name = String(call.function.name.prefix(64))
            var error: String?
            var result: JSONValue = .null
            if asked[index].function.arguments.utf8.count > Self.argumentBytes {
                error = "the arguments are over \(Self.argumentBytes) bytes; not run"
            } else if !self.ticket.tools.contains(name) {
                error = "the tool \(name) is not available to this field"
            } else if let arguments = try? JSONValue.parse(Array(call.function.arguments.utf8)), arguments.objectValue != nil {
                let response = await self.client.call(job: self.job, attempt: self.attempt, tool: name, arguments: arguments, ticket: self.ticket)
                if let failure = response.error { error = failure } else { result = response.result ?? .null }
                artifacts += Self.artifacts(in: result)
            } else {
                error = "the arguments are not a JSON object"
            }
            let body: JSONValue = error.map { ["error": .string(String($0.prefix(500)))] } ?? Self.forModel(result)
            let text = Self.bounded(String(decoding: (try? Self.encoder.encode(body)) ?? Data(), as: UTF8.self))
            var fenced: [UInt8] = Array(PromptFence.dataOpen.utf8)
            PromptFence.appendEscaped(text, to: &fenced)
            fenced.append(contentsOf: PromptFence.dataClose.utf8)
            let content = String(decoding: fenced, as: UTF8.self)
            bytes += content.utf8.count
            messages.append(.init(role: "tool", content: content, tool_call_id: String(call.id.prefix(128))))
            records.append(ToolCallRecord(
                tool: name, milliseconds: Int((ContinuousClock.now - started) / .milliseconds(1)), resultBytes: content.utf8.count, error: error.map { String($0.prefix(200)) }
            ))
        }
        return Outcome(messages: messages, records: records, resultBytes: bytes, artifacts: artifacts)
    }

    /// The files of a tool's result that are safe to keep: a safe name, a known shape, base64
    /// that decodes, within the per-file size the executor promised.
    /// URLs as the model would write them (`https://`, not `https:\/\/`).
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    static func artifacts(in result: JSONValue) -> [JobArtifact] {
        (result["artifacts"]?.arrayValue ?? []).prefix(JobArtifact.maximumCount).compactMap { item in
            guard case .string(let name)? = item["name"], JobArtifact.isSafeName(name), case .string(let type)? = item["media_type"],
                  type.utf8.count <= 100, case .string(let data)? = item["data"], data.utf8.count <= (JobArtifact.maximumTotalBytes / 3 + 1) * 4,
                  Data(base64Encoded: data) != nil else { return nil }
            return JobArtifact(name: name, mediaType: type, data: data)
        }
    }

    /// What the model is given of a result: artifacts by name, type and size (the bytes stay
    /// with the job's output, not in the conversation).
    static func forModel(_ result: JSONValue) -> JSONValue {
        guard var object = result.objectValue else { return result }
        if let artifacts = object["artifacts"]?.arrayValue {
            object["artifacts"] = .array(artifacts.map { artifact in
                ["name": artifact["name"] ?? .null, "media_type": artifact["media_type"] ?? .null, "size": artifact["size"] ?? .null]
            })
        }
        return .object(object)
    }

    /// At most `ToolLoop.resultBytes` of UTF-8, cut on a scalar boundary, saying so.
    static func bounded(_ text: String) -> String {
        guard text.utf8.count > ToolLoop.resultBytes else { return text }
        var kept = ""
        var used = 0
        for scalar in text.unicodeScalars {
            let size = String(scalar).utf8.count
            if used + size > ToolLoop.resultBytes - 40 { break }
            kept.unicodeScalars.append(scalar)
            used += size
        }
        return kept + " …[cut at \(ToolLoop.resultBytes) bytes]"
    }
}
