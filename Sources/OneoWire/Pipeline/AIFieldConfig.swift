import Foundation

/// The `ai_config` of an `ai_generated` field, with the reference's keys and defaults. It is read
/// from untrusted JSON, so every key is checked and an error names the key at fault.
public struct AIFieldConfig: Sendable, Hashable, Codable {
    public enum OutputType: String, Sendable, Hashable, Codable, CaseIterable {
        case text, json, structured, number
        case singleSelect = "single_select"
        case multiSelect = "multi_select"
    }

    public static let knownTools: Set<String> = ["web_search", "code_interpreter", "image_generation", "file_search"]

    public var model: String?
    public var temperature: Double
    public var maxTokens: Int
    public var prompt: String
    public var enableTools: Bool
    public var allowedTools: [String]
    public var autoRegenerate: Bool
    public var triggerFields: [String]
    public var excludedFields: [String]
    public var cacheDuration: Int
    public var budgetLimitCents: Int64?
    /// The longest a result is cached: 30 days.
    public static let maximumCacheSeconds = 2_592_000
    /// The largest field budget, in cents: its micro-dollars stay far from overflow.
    public static let maximumBudgetCents: Int64 = 100_000_000
    public var outputType: OutputType
    public var systemMessage: String?
    /// Each value's text is cut at this many Unicode scalars, with a visible marker.
    public var maxFieldChars: Int
    /// The whole prompt stays within this many Unicode scalars (`PromptRenderer` says how).
    public var maxPromptChars: Int
    /// Personal values redacted on top of the built-in detectors: `email`, `phone`.
    public var redact: [RedactionKind]
    /// The values a `single_select` or `multi_select` field may take (stored and sent only when
    /// there are any: older readers of a config or a frame never meet the key otherwise).
    public var choices: [String] {
        get { self.choiceList ?? [] }
        set { self.choiceList = newValue.isEmpty ? nil : newValue }
    }
    private var choiceList: [String]?
    /// The JSON Schema a `structured` field's value follows (an object schema).
    public var outputSchema: JSONValue?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, temperature, prompt
        case maxTokens = "max_tokens"
        case enableTools = "enable_tools"
        case allowedTools = "allowed_tools"
        case autoRegenerate = "auto_regenerate"
        case triggerFields = "trigger_fields"
        case excludedFields = "excluded_fields"
        case cacheDuration = "cache_duration"
        case budgetLimitCents = "budget_limit_cents"
        case outputType = "output_type"
        case systemMessage = "system_message"
        case maxFieldChars = "max_field_chars"
        case maxPromptChars = "max_prompt_chars"
        case redact
        case choiceList = "choices"
        case outputSchema = "output_schema"
    }

    public init(prompt: String) {
        self.model = nil
        self.temperature = 0.3
        self.maxTokens = 1000
        self.prompt = prompt
        self.enableTools = false
        self.allowedTools = []
        self.autoRegenerate = true
        self.triggerFields = []
        self.excludedFields = []
        self.cacheDuration = 3600
        self.budgetLimitCents = nil
        self.outputType = .text
        self.systemMessage = nil
        self.maxFieldChars = 2_000
        self.maxPromptChars = 32_000
        self.redact = []
        self.choiceList = nil
        self.outputSchema = nil
    }

    /// What of a model's reply formats this output type needs.
    public var neededResponseFormat: ModelCatalog.Model.ResponseFormat {
        switch self.outputType {
        case .text: .none
        case .json: .jsonObject
        case .structured, .number, .singleSelect, .multiSelect: .jsonSchema
        }
    }

    /// The schema the provider is asked to answer in (strict structured output), for every type
    /// but `text` and `json`: the field's own for `structured`; `{"value": …}` for a number and a
    /// single choice, `{"values": […]}` for several.
    public var responseSchema: JSONValue? {
        func wrapped(_ key: String, _ schema: JSONValue) -> JSONValue {
            ["type": "object", "properties": .object([key: schema]), "required": [.string(key)], "additionalProperties": false]
        }
        let choices = JSONValue.array(self.choices.map(JSONValue.string))
        switch self.outputType {
        case .text, .json: return nil
        case .structured: return self.outputSchema
        case .number: return wrapped("value", ["type": "number"])
        case .singleSelect: return wrapped("value", ["type": "string", "enum": choices])
        case .multiSelect: return wrapped("values", ["type": "array", "minItems": 1, "items": ["type": "string", "enum": choices]])
        }
    }

    /// The config as stored in `fields.ai_config` and copied onto each job, defaults filled in.
    public var jsonValue: JSONValue {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding plain strings, numbers and lists cannot fail.
        guard let data = try? encoder.encode(self), let value = try? JSONValue.parse(data) else { return .object([:]) }
        return value
    }

    /// Validates a JSON object from the API or the database and fills in defaults. A config read
    /// back from storage (`stored`) is not held to size limits added after it was written: it
    /// still loads (its field lists, its jobs fail with a clear error), and the renderer and the
    /// template parser apply the limits when it is used.
    public init(validating value: JSONValue, stored: Bool = false) throws(FieldConfigError) {
        guard let object = value.objectValue else {
            throw FieldConfigError(key: nil, problem: "ai_config must be a JSON object")
        }
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw FieldConfigError(key: unknown, problem: "is not an ai_config key (known: \(known.sorted().joined(separator: ", ")))")
        }
        if !stored, let path = value.pathOfUnstorableText(under: "ai_config") {
            throw FieldConfigError(key: nil, problem: "\(path) contains a NUL character (U+0000), which cannot be stored")
        }
        let reader = Reader(object: object)
        let prompt = try reader.string(.prompt)
        guard let prompt, !prompt.isEmpty else {
            throw FieldConfigError(key: "prompt", problem: "is required and must be a non-empty string")
        }
        guard stored || prompt.utf8.count <= PromptLimits.templateBytes else {
            throw FieldConfigError(key: "prompt", problem: "is \(prompt.utf8.count) bytes; the limit is \(PromptLimits.templateBytes) bytes")
        }
        self.init(prompt: prompt)
        self.model = try reader.string(.model)
        if let model, model.isEmpty || (!stored && model.utf8.count > 100) {
            throw FieldConfigError(key: "model", problem: "must be a model name of 1 to 100 bytes")
        }
        self.temperature = try reader.number(.temperature) ?? self.temperature
        guard (0...2).contains(self.temperature) else {
            throw FieldConfigError(key: "temperature", problem: "must be between 0 and 2")
        }
        self.maxTokens = try reader.integer(.maxTokens).map { Int($0) } ?? self.maxTokens
        guard (1...128_000).contains(self.maxTokens) else {
            throw FieldConfigError(key: "max_tokens", problem: "must be between 1 and 128000")
        }
        self.enableTools = try reader.bool(.enableTools) ?? self.enableTools
        self.allowedTools = try reader.strings(.allowedTools) ?? []
        if let unknown = self.allowedTools.first(where: { !Self.knownTools.contains($0) }) {
            throw FieldConfigError(key: "allowed_tools", problem: "names unknown tool '\(unknown)' (known: \(Self.knownTools.sorted().joined(separator: ", ")))")
        }
        self.autoRegenerate = try reader.bool(.autoRegenerate) ?? self.autoRegenerate
        self.triggerFields = try reader.strings(.triggerFields) ?? []
        self.excludedFields = try reader.strings(.excludedFields) ?? []
        for (key, names) in [(CodingKeys.triggerFields, self.triggerFields), (.excludedFields, self.excludedFields)] where !stored {
            guard names.count <= 100, names.allSatisfy(Self.isListedName) else {
                throw FieldConfigError(key: key.rawValue, problem: "takes at most 100 names of at most 128 bytes and \(PromptLimits.pathDepth) dotted parts each, without control characters")
            }
        }
        if stored {
            // A row written before these limits: its trigger list is trimmed to them (a trigger
            // too many costs a regeneration, nothing more); its exclusions are all kept — an
            // exclusion dropped would send what it withholds — unless one is past any sensible
            // size, when the config is refused (its jobs fail saying so) rather than half applied.
            self.triggerFields = Array(self.triggerFields.filter(Self.isListedName).prefix(100))
            if let absurd = self.excludedFields.first(where: { $0.utf8.count > 4_096 || $0.split(separator: ".").count > 64 }) {
                throw FieldConfigError(key: "excluded_fields", problem: "holds an entry of \(absurd.utf8.count) bytes that cannot be applied; edit the field's excluded_fields")
            }
        }
        self.cacheDuration = try reader.integer(.cacheDuration).map { Int($0) } ?? self.cacheDuration
        guard (0...Self.maximumCacheSeconds).contains(self.cacheDuration) else {
            throw FieldConfigError(key: "cache_duration", problem: "must be zero (no caching) or a number of seconds up to \(Self.maximumCacheSeconds) (30 days)")
        }
        self.budgetLimitCents = try reader.integer(.budgetLimitCents)
        if let budget = self.budgetLimitCents, !(0...Self.maximumBudgetCents).contains(budget) {
            throw FieldConfigError(key: "budget_limit_cents", problem: "must be 0...\(Self.maximumBudgetCents) (a million dollars a month)")
        }
        if let output = try reader.string(.outputType) {
            guard let type = OutputType(rawValue: output) else {
                throw FieldConfigError(key: "output_type", problem: "must be one of \(OutputType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.outputType = type
        }
        self.choices = try reader.strings(.choiceList) ?? []
        let selects = self.outputType == .singleSelect || self.outputType == .multiSelect
        if selects {
            guard (1...100).contains(self.choices.count), Set(self.choices).count == self.choices.count,
                  self.choices.allSatisfy({ (1...200).contains($0.utf8.count) && !$0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) else {
                throw FieldConfigError(key: "choices", problem: "must list 1 to 100 different choices of 1 to 200 bytes, without control characters")
            }
        } else if !self.choices.isEmpty {
            throw FieldConfigError(key: "choices", problem: "is only for output_type single_select or multi_select")
        }
        self.outputSchema = reader.value(.outputSchema)
        if self.outputType == .structured {
            if let schema = self.outputSchema, !stored {
                guard schema["type"]?.stringValue == "object", schema.objectValue?["properties"]?.objectValue != nil else {
                    throw FieldConfigError(key: "output_schema", problem: "must be a JSON Schema with \"type\": \"object\" and \"properties\"")
                }
                let encoded = (try? JSONEncoder().encode(schema))?.count ?? Int.max
                guard encoded <= 16_384 else { throw FieldConfigError(key: "output_schema", problem: "is \(encoded) bytes encoded; the limit is 16384") }
                if let problem = Self.strictProblem(schema, at: "output_schema", depth: 0) { throw FieldConfigError(key: "output_schema", problem: problem) }
            } else if !stored {
                // A field stored before schemas were taken runs as `json`.
                throw FieldConfigError(key: "output_schema", problem: "is required for output_type structured: a JSON Schema of an object")
            }
        } else if self.outputSchema != nil {
            throw FieldConfigError(key: "output_schema", problem: "is only for output_type structured")
        }
        self.systemMessage = try reader.string(.systemMessage)
        if let systemMessage, systemMessage.utf8.count > PromptLimits.systemMessageBytes {
            guard stored else {
                throw FieldConfigError(key: "system_message", problem: "is \(systemMessage.utf8.count) bytes; the limit is \(PromptLimits.systemMessageBytes) bytes")
            }
            // An older row's longer message is cut to the limit, on a scalar boundary.
            var kept = String.UnicodeScalarView()
            var bytes = 0
            for scalar in systemMessage.unicodeScalars {
                bytes += String(scalar).utf8.count
                guard bytes <= PromptLimits.systemMessageBytes else { break }
                kept.append(scalar)
            }
            self.systemMessage = String(kept)
        }
        self.maxFieldChars = try reader.integer(.maxFieldChars).map { Int($0) } ?? self.maxFieldChars
        guard (20...PromptLimits.fieldCharacters).contains(self.maxFieldChars) else {
            throw FieldConfigError(key: "max_field_chars", problem: "must be between 20 and \(PromptLimits.fieldCharacters) (Unicode scalars)")
        }
        self.maxPromptChars = try reader.integer(.maxPromptChars).map { Int($0) } ?? self.maxPromptChars
        guard (100...PromptLimits.promptCharacters).contains(self.maxPromptChars) else {
            throw FieldConfigError(key: "max_prompt_chars", problem: "must be between 100 and \(PromptLimits.promptCharacters) (Unicode scalars; the hard ceiling)")
        }
        self.redact = try (reader.strings(.redact) ?? []).map { name throws(FieldConfigError) in
            guard let kind = RedactionKind(rawValue: name), RedactionKind.optIn.contains(kind) else {
                throw FieldConfigError(key: "redact", problem: "names '\(name)'; it takes: email, phone (the other detectors always run)")
            }
            return kind
        }
    }

    /// What keeps a schema from OpenAI's strict structured output: every object must list all its
    /// properties as required and allow no others; nesting at most 10 deep.
    static func strictProblem(_ schema: JSONValue, at path: String, depth: Int) -> String? {
        guard depth < 10 else { return "nests deeper than 10 levels at \(path)" }
        if schema["type"]?.stringValue == "object" {
            let properties = schema["properties"]?.objectValue ?? [:]
            guard schema["additionalProperties"] == .bool(false) else { return "needs \"additionalProperties\": false at \(path) (strict structured output)" }
            let required = Set(schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            guard required == Set(properties.keys) else { return "must list every property in \"required\" at \(path) (strict structured output)" }
            for (name, property) in properties.sorted(by: { $0.key < $1.key }) {
                if let problem = Self.strictProblem(property, at: "\(path).\(name)", depth: depth + 1) { return problem }
            }
        }
        if let items = schema["items"], let problem = Self.strictProblem(items, at: "\(path)[]", depth: depth + 1) { return problem }
        return nil
    }

    /// A name in `excluded_fields` or `trigger_fields`: at most 128 bytes and `PromptLimits.pathDepth`
    /// dotted parts, no control characters.
    static func isListedName(_ name: String) -> Bool {
        name.utf8.count <= 128 && name.split(separator: ".", omittingEmptySubsequences: false).count <= PromptLimits.pathDepth
            && !name.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// Reads typed values out of a JSON object, naming the key when a type is wrong.
    private struct Reader {
        let object: [String: JSONValue]

        func value(_ key: CodingKeys) -> JSONValue? {
            guard let value = self.object[key.rawValue], !value.isNull else { return nil }
            return value
        }

        func string(_ key: CodingKeys) throws(FieldConfigError) -> String? {
            guard let value = self.value(key) else { return nil }
            guard case .string(let string) = value else { throw FieldConfigError(key: key.rawValue, problem: "must be a string") }
            return string
        }

        func bool(_ key: CodingKeys) throws(FieldConfigError) -> Bool? {
            guard let value = self.value(key) else { return nil }
            guard case .bool(let bool) = value else { throw FieldConfigError(key: key.rawValue, problem: "must be true or false") }
            return bool
        }

        func integer(_ key: CodingKeys) throws(FieldConfigError) -> Int64? {
            switch self.value(key) {
            case nil: return nil
            case .integer(let integer): return integer
            case .double(let double) where double == double.rounded() && abs(double) < 1e15: return Int64(double)
            default: throw FieldConfigError(key: key.rawValue, problem: "must be an integer")
            }
        }

        func number(_ key: CodingKeys) throws(FieldConfigError) -> Double? {
            switch self.value(key) {
            case nil: return nil
            case .integer(let integer): return Double(integer)
            case .double(let double): return double
            default: throw FieldConfigError(key: key.rawValue, problem: "must be a number")
            }
        }

        func strings(_ key: CodingKeys) throws(FieldConfigError) -> [String]? {
            guard let value = self.value(key) else { return nil }
            guard case .array(let items) = value else { throw FieldConfigError(key: key.rawValue, problem: "must be a list of strings") }
            return try items.map { item throws(FieldConfigError) in
                guard case .string(let string) = item else { throw FieldConfigError(key: key.rawValue, problem: "must be a list of strings") }
                return string
            }
        }
    }
}

/// An `ai_config` that cannot be accepted; `key` names the offending key.
public struct FieldConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public let key: String?
    public let problem: String

    public init(key: String?, problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String {
        guard let key else { return self.problem }
        return "ai_config.\(key) \(self.problem)"
    }
}
