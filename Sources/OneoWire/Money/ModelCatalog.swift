public import Foundation

/// What each model costs and which request parameters it takes, read from data
/// (`Money/models.json`, shipped in the binary) with an operator's overrides on top. Prices are
/// integer micro-dollars, so every cost is exact; a model that is not here has no price, and an
/// AI field naming it is refused when it is configured (never charged at a guess).
public struct ModelCatalog: Sendable, Codable, Equatable {
    public struct Model: Sendable, Codable, Equatable {
        /// Per million prompt tokens, per million cached prompt tokens (the input price when the
        /// provider gives no discount), per million completion tokens.
        public var input: Microdollars
        public var cachedInput: Microdollars?
        public var output: Microdollars
        public var tokenParameter: TokenParameter
        public var temperature: Bool

        public enum TokenParameter: String, Sendable, Codable, Equatable {
            case maxTokens = "max_tokens"
            case maxCompletionTokens = "max_completion_tokens"
        }

        public init(input: Microdollars, cachedInput: Microdollars? = nil, output: Microdollars, tokenParameter: TokenParameter = .maxTokens, temperature: Bool = true) {
            self.input = input
            self.cachedInput = cachedInput
            self.output = output
            self.tokenParameter = tokenParameter
            self.temperature = temperature
        }

        private enum CodingKeys: String, CodingKey {
            case input, cachedInput = "cached_input", output, tokenParameter = "token_parameter", temperature
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.input = try container.decode(Microdollars.self, forKey: .input)
            self.cachedInput = try container.decodeIfPresent(Microdollars.self, forKey: .cachedInput)
            self.output = try container.decode(Microdollars.self, forKey: .output)
            self.tokenParameter = try container.decodeIfPresent(TokenParameter.self, forKey: .tokenParameter) ?? .maxTokens
            self.temperature = try container.decodeIfPresent(Bool.self, forKey: .temperature) ?? true
            for price in [self.input, self.cachedInput ?? .zero, self.output] where !(0...Self.highestPrice).contains(price.rawValue) {
                throw DecodingError.dataCorruptedError(forKey: .input, in: container, debugDescription: "a price must be 0...\(Self.highestPrice) micro-dollars per million tokens")
            }
        }

        /// $1,000 per million tokens: no list price is near it, and tokens × price stays far from
        /// overflow for any count a reply may carry.
        static let highestPrice: Int64 = 1_000_000_000

        /// The exact cost of a call, rounded up to the next micro-dollar: cached prompt tokens at
        /// their price, the other prompt tokens and the completion at theirs. Cached tokens are
        /// clamped to the prompt's.
        public func cost(promptTokens: Int, cachedTokens: Int = 0, completionTokens: Int) -> Microdollars {
            func charge(_ tokens: Int, _ perMillion: Microdollars) -> Int64 {
                (Int64(max(0, tokens)) * perMillion.rawValue + 999_999) / 1_000_000
            }
            let cached = min(max(0, cachedTokens), max(0, promptTokens))
            return Microdollars(
                charge(promptTokens - cached, self.input) + charge(cached, self.cachedInput ?? self.input) + charge(completionTokens, self.output)
            )
        }
    }

    public struct PerUnit: Sendable, Codable, Equatable {
        public var perImage: Microdollars?
        public var perCall: Microdollars?

        private enum CodingKeys: String, CodingKey { case perImage = "per_image", perCall = "per_call" }
    }

    public var models: [String: Model]
    public var images: [String: PerUnit]
    public var tools: [String: PerUnit]

    public init(models: [String: Model], images: [String: PerUnit] = [:], tools: [String: PerUnit] = [:]) {
        self.models = models
        self.images = images
        self.tools = tools
    }

    private enum CodingKeys: String, CodingKey { case models, images, tools }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.models = try container.decodeIfPresent([String: Model].self, forKey: .models) ?? [:]
        self.images = try container.decodeIfPresent([String: PerUnit].self, forKey: .images) ?? [:]
        self.tools = try container.decodeIfPresent([String: PerUnit].self, forKey: .tools) ?? [:]
        for name in self.models.keys where name.isEmpty || name.utf8.count > 100 {
            throw DecodingError.dataCorruptedError(forKey: .models, in: container, debugDescription: "a model name must be 1...100 bytes")
        }
    }

    /// The prices shipped with the engine.
    public static let builtIn: ModelCatalog = {
        // Our own data, checked by the tests: a failure here is a build defect.
        // swiftlint:disable:next force_try
        try! JSONDecoder().decode(ModelCatalog.self, from: Data(PackageResources.models_json))
    }()

    /// This catalog with `overrides`' entries added or replacing ours, model by model.
    public func merging(_ overrides: ModelCatalog) -> ModelCatalog {
        ModelCatalog(
            models: self.models.merging(overrides.models) { _, new in new },
            images: self.images.merging(overrides.images) { _, new in new },
            tools: self.tools.merging(overrides.tools) { _, new in new }
        )
    }

    /// A model's entry: its own, or that of the longest known name it is a dated snapshot of
    /// (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`); nil when it has no price.
    public func model(_ name: String) -> Model? {
        if let known = self.models[name] { return known }
        let base = self.models.keys.filter { name.hasPrefix($0 + "-") && Self.isSnapshotSuffix(name.dropFirst($0.count + 1)) }
        return base.max(by: { $0.count < $1.count }).flatMap { self.models[$0] }
    }

    /// `2024-07-18` or `0613`: what providers append to name a snapshot of a model.
    private static func isSnapshotSuffix(_ suffix: Substring) -> Bool {
        !suffix.isEmpty && suffix.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "-") }
    }
}
