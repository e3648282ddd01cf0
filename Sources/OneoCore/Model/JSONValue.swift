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
    /// first building a copy of the value that lacks them.
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
        case .string(let value): Self.writeString(value, to: &output)
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

    private static func writeString(_ value: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        // Most strings need no escaping: then they are copied whole.
        let plain = value.utf8.withContiguousStorageIfAvailable { bytes in
            !bytes.contains { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }
        }
        if plain == true {
            output.appendUTF8(value)
            output.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): output.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\n"): output.append(contentsOf: "\\n".utf8)
            case UInt8(ascii: "\r"): output.append(contentsOf: "\\r".utf8)
            case UInt8(ascii: "\t"): output.append(contentsOf: "\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                output.append(contentsOf: "\\u00".utf8)
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0xF)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    public static func parse(_ bytes: some Collection<UInt8>) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
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
}

extension JSONKeyFilter {
    public var keepsMoneyKeys: Bool { self.keeping("amount") != nil && self.keeping("currency") != nil }
}

public struct KeepEveryKey: JSONKeyFilter {
    public init() {}
    public func keeping(_ key: String) -> KeepEveryKey? { self }
}

/// Binds and reads JSON values as `jsonb`, through PostgresNIO's JSON codable support.
extension JSONValue: PostgresEncodable, PostgresDecodable {}
