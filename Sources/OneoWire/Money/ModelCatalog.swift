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
        /// Which parameter limits the output (nil: `max_tokens`, the classic one).
        public var tokenParameter: TokenParameter?
        /// Whether the model takes a temperature (nil: it does).
        public var temperature: Bool?
        /// The most structured a reply it can be asked for (nil: strict JSON Schema).
        public var responseFormat: ResponseFormat?

        public enum ResponseFormat: String, Sendable, Codable, Equatable, Comparable {
            case none
            case jsonObject = "json_object"
            case jsonSchema = "json_schema"

            public static func < (lhs: Self, rhs: Self) -> Bool {
                let order: [Self] = [.none, .jsonObject, .jsonSchema]
                return order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
            }
        }

        /// What the model takes, resolved.
        public var responseFormats: ResponseFormat { self.responseFormat ?? .jsonSchema }

        public enum TokenParameter: String, Sendable, Codable, Equatable {
            case maxTokens = "max_tokens"
            case maxCompletionTokens = "max_completion_tokens"
        }

        public init(input: Microdollars, cachedInput: Microdollars? = nil, output: Microdollars, tokenParameter: TokenParameter? = nil, temperature: Bool? = nil) {
            self.input = input
            self.cachedInput = cachedInput
            self.output = output
            self.tokenParameter = tokenParameter
            self.temperature = temperature
        }

        private enum CodingKeys: String, CodingKey {
            case input, cachedInput = "cached_input", output, tokenParameter = "token_parameter", temperature
            case responseFormat = "response_format"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.input = try container.decode(Microdollars.self, forKey: .input)
            self.cachedInput = try container.decodeIfPresent(Microdollars.self, forKey: .cachedInput)
            self.output = try container.decode(Microdollars.self, forKey: .output)
            self.tokenParameter = try container.decodeIfPresent(TokenParameter.self, forKey: .tokenParameter)
            self.temperature = try container.decodeIfPresent(Bool.self, forKey: .temperature)
            self.responseFormat = try container.decodeIfPresent(ResponseFormat.self, forKey: .responseFormat)
            for price in [self.input, self.cachedInput ?? .zero, self.output] where !(0...Self.highestPrice).contains(price.rawValue) {
                throw DecodingError.dataCorruptedError(forKey: .input, in: container, debugDescription: "a price must be 0...\(Self.highestPrice) micro-dollars per million tokens")
            }
            if let cached = self.cachedInput, cached > self.input {
                throw DecodingError.dataCorruptedError(forKey: .cachedInput, in: container, debugDescription: "cached_input must not exceed input")
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

    /// Per image or per tool call (see `toolFee`).
    public struct PerUnit: Sendable, Codable, Equatable {
        public var perImage: Microdollars?
        public var perCall: Microdollars?

        private enum CodingKeys: String, CodingKey { case perImage = "per_image", perCall = "per_call" }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.perImage = try container.decodeIfPresent(Microdollars.self, forKey: .perImage)
            self.perCall = try container.decodeIfPresent(Microdollars.self, forKey: .perCall)
            for price in [self.perImage, self.perCall].compactMap({ $0 }) where !(0...100_000_000).contains(price.rawValue) {
                throw DecodingError.dataCorruptedError(forKey: .perImage, in: container, debugDescription: "a unit price must be 0...100000000 micro-dollars")
            }
        }
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
        guard self.models.count + self.images.count + self.tools.count <= Self.maximumEntries else {
            throw DecodingError.dataCorruptedError(forKey: .models, in: container, debugDescription: "at most \(Self.maximumEntries) entries")
        }
    }

    /// The prices shipped with the engine.
    public static let builtIn: ModelCatalog = {
        // Our own data, checked by the tests: a failure here is a build defect.
        // swiftlint:disable:next force_try
        try! JSONDecoder().decode(ModelCatalog.self, from: Data(PackageResources.models_json))
    }()

    /// Entries a catalog may hold: every child receives it in its bootstrap frame.
    public static let maximumEntries = 1_000

    /// This catalog with `overrides`' entries added or replacing ours, model by model; an
    /// override that leaves out a model's parameters keeps the ones it had.
    public func merging(_ overrides: ModelCatalog) -> ModelCatalog {
        ModelCatalog(
            models: self.models.merging(overrides.models) { old, new in
                var merged = new
                merged.tokenParameter = new.tokenParameter ?? old.tokenParameter
                merged.temperature = new.temperature ?? old.temperature
                merged.responseFormat = new.responseFormat ?? old.responseFormat
                return merged
            },
            images: self.images.merging(overrides.images) { _, new in new },
            tools: self.tools.merging(overrides.tools) { _, new in new }
        )
    }

    /// One call of a tool (none listed: free); an image also costs one image of the model the
    /// image tool asks for.
    public func toolFee(_ tool: String) -> Microdollars {
        let call = self.tools[tool]?.perCall?.rawValue ?? 0
        guard tool == "image_generation" else { return Microdollars(call) }
        return Microdollars(call + (self.images[ToolCatalog.imageModel]?.perImage?.rawValue ?? 0))
    }

    /// A model's entry: its own, or that of the longest known name it is a dated snapshot of
    /// (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`); nil when it has no price.
    public func model(_ name: String) -> Model? {
        if let known = self.models[name] { return known }
        let base = self.models.keys.filter { name.hasPrefix($0 + "-") && Self.isSnapshotSuffix(name.dropFirst($0.count + 1)) }
        return base.max(by: { $0.count < $1.count }).flatMap { self.models[$0] }
    }

    /// `2024-07-18` or `0613`, exactly: what providers append to name a snapshot of a model.
    private static func isSnapshotSuffix(_ suffix: Substring) -> Bool {
        let parts = suffix.split(separator: "-", omittingEmptySubsequences: false)
        let digits = { (part: Substring, count: Int) in part.count == count && part.allSatisfy { $0.isASCII && $0.isNumber } }
        return (parts.count == 1 && digits(parts[0], 4)) || (parts.count == 3 && digits(parts[0], 4) && digits(parts[1], 2) && digits(parts[2], 2))
    }

    /// The most expensive model's entry: what a cost falls back to if a model lost its price
    /// between hand-out and result (never under-charging).
    public var mostExpensive: Model {
        self.models.values.max { ($0.input.rawValue + $0.output.rawValue) < ($1.input.rawValue + $1.output.rawValue) }
            ?? Model(input: Microdollars(Model.highestPrice), output: Microdollars(Model.highestPrice))
    }
}
