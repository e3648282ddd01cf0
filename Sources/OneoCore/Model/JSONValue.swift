public import PostgresNIO
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

    /// Compact JSON with sorted keys, written by hand: prompts render many small structures, and
    /// the same value must always give the same bytes.
    public var compactJSON: String {
        var output: [UInt8] = []
        self.writeJSON(to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Compact JSON with sorted keys, appended to a byte buffer.
    func writeJSON(to output: inout [UInt8]) {
        var omitted = 0
        self.writeJSON(to: &output, keeping: KeepEveryKey(), omitted: &omitted)
    }

    /// Compact JSON with sorted keys, leaving out the object keys `filter` refuses, at any depth,
    /// and counting them: how a prompt shows a value without its sensitive nested keys, without
    /// first building a copy of the value that lacks them. A string that holds a JSON object or
    /// list is read as one and filtered the same way (an integration's `"{\"password\": …}"`).
    func writeJSON<Filter: JSONKeyFilter>(to output: inout [UInt8], keeping filter: Filter, omitted: inout Int) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer(let value): output.append(contentsOf: String(value).utf8)
        case .double(let value):
            if value.isFinite {
                output.append(contentsOf: (value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : value.description).utf8)
            } else {
                output.append(contentsOf: "null".utf8)
            }
        case .string(let value):
            // In a prompt (a filter that withholds keys), a string is prepared as a field's text
            // is; written for anything else, it is written as it is.
            if filter.filtersKeys, let prepared = ValueFormatter.preparedText(value, keeping: filter, omitted: &omitted) {
                Self.writeString(String(decoding: prepared, as: UTF8.self), to: &output)
            } else {
                Self.writeString(value, to: &output)
            }
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                item.writeJSON(to: &output, keeping: filter, omitted: &omitted)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            var first = true
            for entry in object.sorted(by: { $0.key < $1.key }) {
                guard let inner = filter.keeping(entry.key) else {
                    omitted += 1
                    continue
                }
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                Self.writeString(entry.key, to: &output)
                output.append(UInt8(ascii: ":"))
                entry.value.writeJSON(to: &output, keeping: inner, omitted: &omitted)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string literal. Beyond JSON's own escapes, U+0085, U+2028 and U+2029 are escaped
    /// (no line break of any kind inside a prompt's data) and so is the `<` of a fence tag.
    private static func writeString(_ value: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { bytes in
            // Most strings need no escaping: then they are copied whole.
            var plain = true
            for byte in bytes where byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || byte == UInt8(ascii: "<") || byte == 0xC2 || byte == 0xE2 {
                plain = false
                break
            }
            if plain {
                output.append(contentsOf: bytes)
                return
            }
            let hex = Array("0123456789abcdef".utf8)
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""): output.append(contentsOf: "\\\"".utf8)
                case UInt8(ascii: "\\"): output.append(contentsOf: "\\\\".utf8)
                case UInt8(ascii: "\n"): output.append(contentsOf: "\\n".utf8)
                case UInt8(ascii: "\r"): output.append(contentsOf: "\\r".utf8)
                case UInt8(ascii: "\t"): output.append(contentsOf: "\\t".utf8)
                case 0x08: output.append(contentsOf: "\\b".utf8)
                case 0x0C: output.append(contentsOf: "\\f".utf8)
                case 0..<0x20:
                    output.append(contentsOf: "\\u00".utf8)
                    output.append(hex[Int(byte >> 4)])
                    output.append(hex[Int(byte & 0xF)])
                case UInt8(ascii: "<") where PromptFence.opensTag(bytes, at: index):
                    output.append(contentsOf: "\\u003c".utf8)
                case 0xC2 where index + 1 < bytes.count && bytes[index + 1] == 0x85:
                    output.append(contentsOf: "\\u0085".utf8)
                    index += 1
                case 0xE2 where index + 2 < bytes.count && bytes[index + 1] == 0x80 && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9):
                    output.append(contentsOf: (bytes[index + 2] == 0xA8 ? "\\u2028" : "\\u2029").utf8)
                    index += 2
                default: output.append(byte)
                }
                index += 1
            }
        }
        output.append(UInt8(ascii: "\""))
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

/// Which keys of the objects in a value a writer keeps. Generic rather than a closure, so that
/// writing everything (`KeepEveryKey`) costs nothing extra.
public protocol JSONKeyFilter {
    /// The filter for the value under `key`, or nil to leave the key and its value out.
    func keeping(_ key: String) -> Self?
    /// Whether both keys of a money object (`amount`, `currency`) are kept. Asked for every
    /// money value a prompt shows, so a filter may know the answer rather than match each time.
    var keepsMoneyKeys: Bool { get }
    /// Whether the filter can withhold any key at all; when not, strings holding JSON are
    /// written as they are, unparsed.
    var filtersKeys: Bool { get }
}

extension JSONKeyFilter {
    public var keepsMoneyKeys: Bool { self.keeping("amount") != nil && self.keeping("currency") != nil }
    public var filtersKeys: Bool { true }
}

public struct KeepEveryKey: JSONKeyFilter {
    public init() {}
    public func keeping(_ key: String) -> KeepEveryKey? { self }
    public var filtersKeys: Bool { false }
}

/// Binds and reads JSON values as `jsonb`, through PostgresNIO's JSON codable support.
extension JSONValue: PostgresEncodable, PostgresDecodable {}
