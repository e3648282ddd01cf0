import Foundation

/// A strict upper bound of what one provider call can cost, from what is sent: the budget
/// reservation and the API's worst-case estimates use this one bound. A token is at least one
/// byte of the text it encodes, so the UTF-8 bytes of every message (and of the reply format's
/// schema, which the provider counts as input) bound the input tokens from above; each message
/// and the request add framing tokens of their own. The output is bounded by the request's
/// output limit (`max_tokens` or `max_completion_tokens`, reasoning included).
public struct CallBound: Sendable, Hashable, Codable {
    public var inputTokens: Int
    public var outputTokens: Int

    /// Framing per message (role, separators; OpenAI counts 3-4) and per request (the reply's
    /// priming, 3), with room to spare: the bound must never be below the real count.
    public static let tokensPerMessage = 8
    public static let tokensPerRequest = 16
    /// More tokens than any model's context and output together: a bound past it is held to it.
    public static let maximumTokens = 10_000_000

    public init(inputTokens: Int, outputTokens: Int) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }

    /// The bound of a request whose messages have these UTF-8 sizes, with `extraBytes` of
    /// other counted input (a response schema, tool definitions), and this output limit.
    public init(messageBytes: [Int], extraBytes: Int = 0, outputLimit: Int) {
        let input = messageBytes.reduce(Self.tokensPerRequest + max(0, extraBytes)) { $0 + max(0, $1) + Self.tokensPerMessage }
        self.init(inputTokens: input, outputTokens: max(0, outputLimit))
    }

    /// The bound of a field's request as the API can see it before any call: the system message
    /// and the rendered prompt (each with its role), the reply schema's bytes, the output limit.
    /// The preview and bulk generation's estimate use it.
    public init(system: String, prompt: String, schemaBytes: Int, outputLimit: Int) {
        self.init(
            messageBytes: ["system".utf8.count + system.utf8.count, "user".utf8.count + prompt.utf8.count], extraBytes: schemaBytes,
            outputLimit: outputLimit
        )
    }

    /// The bound priced: every input token at the uncached price (a cache discount is never
    /// assumed), every output token at the output price.
    public func cost(at price: ModelCatalog.Model) -> Microdollars {
        price.cost(promptTokens: self.inputTokens, cachedTokens: 0, completionTokens: self.outputTokens)
    }
}

extension CallBound {
    /// The worst case of one job of a field, priced: its call, and the one repair a typed output
    /// may need (`mayRepair`); with tools, every call the loop may make at its largest (all
    /// earlier turns and every result in it) and the fee of every tool call it may make. The
    /// preview and bulk generation's estimates.
    public static func jobWorstCase(first: CallBound, tools: [String], mayRepair: Bool, models: ModelCatalog, price: ModelCatalog.Model) -> Microdollars {
        let usable = tools.filter { ToolCatalog.available.contains($0) }
        guard !usable.isEmpty else {
            // The repair carries the answer (cut to 4 KiB) and the correction besides the prompt.
            let repair = CallBound(inputTokens: first.inputTokens + 4_096 + 300 + 2 * CallBound.tokensPerMessage, outputTokens: first.outputTokens)
            return Microdollars(first.cost(at: price).rawValue + (mayRepair ? repair.cost(at: price).rawValue : 0))
        }
        let schema = (try? JSONEncoder().encode(ToolCatalog.definitions(usable)).count) ?? 0
        let rounds = ToolLoop.maximumRounds
        let perRound = ToolLoop.maximumCallsPerRound
        let messages = rounds * (1 + perRound)
        // Each round sends back the model's turn: at most `perRound` calls, each with 16 KiB of
        // arguments, an id and a name (the processor cuts the rest). Results go in until their
        // total passes the cap; the round that passes it adds at most `perRound` results, each
        // at most three times its cut (the fence writes `<` and line breaks as 3-byte marks).
        let turns = rounds * perRound * (16 << 10 + 256)
        let results = ToolLoop.totalResultBytes + perRound * (3 * ToolLoop.resultBytes + 64)
        let largest = CallBound(
            inputTokens: min(first.inputTokens + schema + turns + results + messages * (CallBound.tokensPerMessage + 160), CallBound.maximumTokens),
            outputTokens: first.outputTokens
        )
        let calls = Int64(ToolLoop.maximumProviderCalls)
        // Every reservation of the loop holds the fees its reply's calls may cost.
        let fee = usable.map { models.toolFee($0).rawValue }.max() ?? 0
        return Microdollars(calls * largest.cost(at: price).rawValue + calls * Int64(perRound) * fee)
    }
}
