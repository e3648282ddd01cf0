import Crypto
import Foundation
public import OneoWire

/// The cache key of a request: SHA-256 of its canonical form — model, parameters, every message
/// (the system message and the final prompt), the reply format, the tools, and the output type
/// with its choices — so two requests share an entry only when the provider would be asked the
/// same thing and its answer checked the same way. The tenant is in the key's prefix.
enum CacheKey {
    private struct Canonical: Encodable {
        let request: ChatCompletionsClient.Request
        let output_type: String
        let choices: [String]
        let tools: [String]
    }

    static func digest(of request: ChatCompletionsClient.Request, config: AIFieldConfig) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let canonical = Canonical(request: request, output_type: config.outputType.rawValue, choices: config.choices, tools: [])
        guard let data = try? encoder.encode(canonical) else { return nil }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
