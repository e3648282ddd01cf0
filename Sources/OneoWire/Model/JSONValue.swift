import Foundation

/// Any JSON value, as records hold them. Integers stay integers so that `12` never renders as
/// `12.0`; object keys are kept sorted when encoded so the same value always gives the same bytes.
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public var objectValue: [String: JSONValue]? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The path of the first string or key holding U+0000, which PostgreSQL's `text` and `jsonb`
    /// refuse (`data.notes`, `data.tags[2]`); nil when there is none. The path is built only for
    /// the one found, on the way back: linear in the value, however deep.
    public func pathOfUnstorableText(under prefix: String) -> String? {
        guard let components = self.unstorableComponents() else { return nil }
        return prefix + components.reversed().joined()
    }

    /// The bytes of the value as compact JSON, escapes left out (each would add up to 5): a
    /// cheap, linear measure for size caps, with no encoding and no allocation.
    public var unescapedJSONSize: Int {
        switch self {
        case .null: 4
        case .bool(let value): value ? 4 : 5
        case .integer, .double: 24
        case .string(let string): string.utf8.count + 2
        case .array(let items): items.reduce(2 + max(0, items.count - 1)) { $0 + $1.unescapedJSONSize }
        case .object(let object): object.reduce(2 + max(0, object.count - 1)) { $0 + $1.key.utf8.count + 3 + $1.value.unescapedJSONSize }
        }
    }

    /// The path's components, innermost first.
    private func unstorableComponents() -> [String]? {
        switch self {
        case .string(let string): return string.utf8.contains(0) ? [] : nil
        case .array(let items):
            for (index, item) in items.enumerated() {
                if var path = item.unstorableComponents() {
                    path.append("[\(index)]")
                    return path
                }
            }
            return nil
        case .object(let object):
            for key in object.keys.sorted() {
                if key.utf8.contains(0) { return [".\(key.replacingOccurrences(of: "\u{0}", with: "\\u0000"))"] }
                if var path = object[key]!.unstorableComponents() {
                    path.append(".\(key)")
                    return path
                }
            }
            return nil
        default: return nil
        }
    }

    /// `value["a"]?["b"]` on nested objects; nil when absent or not an object.
    public subscript(key: String) -> JSONValue? { self.objectValue?[key] }

    public var integerValue: Int64? {
        switch self {
        case .integer(let value): return value
        case .double(let value): return Int64(exactly: value)
        default: return nil
        }
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    /// Compact JSON with sorted keys, as a request body or a log shows it (a prompt writes JSON
    /// its own way: `OneoPrompt`'s writer).
    public var compactJSON: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Plain values always encode; the fallback is never reached.
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    /// Parses JSON text (`JSONParser`: one pass, linear, nesting bounded).
    public static func parse(_ bytes: some Collection<UInt8>) throws -> JSONValue {
        if let parsed = try bytes.withContiguousStorageIfAvailable({ buffer throws -> JSONValue in try JSONParser.parse(buffer) }) { return parsed }
        return try Array(bytes).withUnsafeBufferPointer { buffer throws -> JSONValue in try JSONParser.parse(buffer) }
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let integer = try? container.decode(Int64.self) {
            self = .integer(integer)
        } else if let double = try? container.decode(Double.self) {
            self = .double(double)
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}
