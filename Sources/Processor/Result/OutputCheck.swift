public import OneoWire

/// A typed output's reply checked against its type: the value the field gets, or what is wrong
/// with it (said back to the model in the one repair call, and stored if the repair fails too).
public enum OutputCheck {
    public struct Problem: Error, Sendable, Equatable {
        public let message: String
    }

    public static func value(of content: String, for config: AIFieldConfig) -> Result<JSONValue, Problem> {
        if config.outputType == .text { return .success(.string(content)) }
        guard let parsed = try? JSONValue.parse(Array(content.utf8)) else { return .failure(Problem(message: "the reply is not JSON")) }
        switch config.outputType {
        case .text: return .success(.string(content))
        case .json: return .success(parsed)
        case .structured:
            guard let schema = config.outputSchema else { return .success(parsed) }
            if let problem = Self.problem(parsed, schema, at: "value", depth: 0) { return .failure(Problem(message: problem)) }
            return .success(parsed)
        case .number:
            switch parsed["value"] {
            case .integer(let number)?: return .success(.integer(number))
            case .double(let number)? where number.isFinite: return .success(.double(number))
            default: return .failure(Problem(message: "value must be a number"))
            }
        case .singleSelect:
            // The configured string is stored, byte for byte (not a canonically equal spelling).
            guard let answer = parsed["value"]?.stringValue, let choice = Self.choice(answer, in: config.choices) else {
                return .failure(Problem(message: "value must be one of the choices"))
            }
            return .success(.string(choice))
        case .multiSelect:
            guard let items = parsed["values"]?.arrayValue, !items.isEmpty else { return .failure(Problem(message: "values must be a list of choices")) }
            var chosen: [String] = []
            for item in items {
                guard let answer = item.stringValue, let choice = Self.choice(answer, in: config.choices) else {
                    return .failure(Problem(message: "values must be choices from the list"))
                }
                if !chosen.contains(where: { Array($0.utf8) == Array(choice.utf8) }) { chosen.append(choice) }
            }
            return .success(.array(chosen.map(JSONValue.string)))
        }
    }

    /// The configured choice the answer names, compared byte for byte.
    static func choice(_ answer: String, in choices: [String]) -> String? {
        let bytes = Array(answer.utf8)
        return choices.first { Array($0.utf8) == bytes }
    }

    /// What in `value` breaks `schema` (a subset of JSON Schema: type, properties, required,
    /// additionalProperties false, enum, items), or nil. Depth-limited: schemas are ours to bound,
    /// replies are not.
    static func problem(_ value: JSONValue, _ schema: JSONValue, at path: String, depth: Int) -> String? {
        guard depth < 32 else { return "\(path) is nested too deeply" }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(value) { return "\(path) is not one of its allowed values" }
        switch schema["type"]?.stringValue {
        case "object"?:
            guard let object = value.objectValue else { return "\(path) must be an object" }
            let properties = schema["properties"]?.objectValue ?? [:]
            for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where object[name] == nil {
                return "\(path).\(name) is required"
            }
            // The key is the reply's text: never quoted back (it goes into the repair request).
            if schema["additionalProperties"] == .bool(false), object.keys.contains(where: { properties[$0] == nil }) {
                return "\(path) has a property the schema does not allow"
            }
            // Paths name the schema's own keys only.
            for (name, property) in properties.sorted(by: { $0.key < $1.key }) {
                if let item = object[name], let problem = Self.problem(item, property, at: "\(path).\(String(name.prefix(64)))", depth: depth + 1) { return problem }
            }
        case "array"?:
            guard let items = value.arrayValue else { return "\(path) must be a list" }
            if let itemSchema = schema["items"] {
                for (index, item) in items.enumerated() {
                    if let problem = Self.problem(item, itemSchema, at: "\(path)[\(index)]", depth: depth + 1) { return problem }
                }
            }
        case "string"?: if value.stringValue == nil { return "\(path) must be a string" }
        case "integer"?: if case .integer = value {} else { return "\(path) must be an integer" }
        case "number"?:
            switch value {
            case .integer, .double: break
            default: return "\(path) must be a number"
            }
        case "boolean"?: if case .bool = value {} else { return "\(path) must be true or false" }
        case "null"?: if !value.isNull { return "\(path) must be null" }
        default: break
        }
        return nil
    }
}
