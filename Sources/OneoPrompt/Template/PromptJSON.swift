public import OneoWire

// JSON as a prompt shows it: sorted keys, sensitive keys withheld at any depth, strings prepared
// as field text is, and no line break or fence tag inside a value.

extension JSONValue {
    /// Compact JSON with sorted keys, appended to a byte buffer.
    package func writeJSON(to output: inout [UInt8]) {
        var omitted = 0
        self.writeJSON(to: &output, keeping: KeepEveryKey(), omitted: &omitted)
    }

    /// Compact JSON with sorted keys, leaving out the object keys `filter` refuses, at any depth,
    /// and counting them: how a prompt shows a value without its sensitive nested keys, without
    /// first building a copy of the value that lacks them. A string that holds a JSON object or
    /// list is read as one and filtered the same way (an integration's `"{\"password\": …}"`).
    package func writeJSON<Filter: JSONKeyFilter>(to output: inout [UInt8], keeping filter: Filter, omitted: inout Int) {
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

