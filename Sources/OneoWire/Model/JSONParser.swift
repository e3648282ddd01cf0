/// The one JSON reader for `JSONValue`: strict RFC 8259, one pass, linear in its input, nesting
/// bounded. It reads what tenants, providers and integrations send (a record's JSON held in a
/// string, a model's `json` output), so it must not cost more than the bytes it is given, and a
/// number that is integral and fits `Int64` is an integer, as `12` must never print as `12.0`.
package struct JSONParser {
    /// Deeper than this is refused, not recursed into.
    static let maximumDepth = 128

    package struct Failure: Error, CustomStringConvertible {
        let offset: Int
        let problem: String
        package var description: String { "invalid JSON at byte \(self.offset): \(self.problem)" }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    package static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(Failure) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == bytes.count else { throw Failure(offset: parser.index, problem: "text after the value") }
        return value
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private mutating func skipSpace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case 0x20, 0x0A, 0x0D, 0x09: self.index += 1
            default: return
            }
        }
    }

    private func failure(_ problem: String) -> Failure { Failure(offset: self.index, problem: problem) }

    private mutating func value(depth: Int) throws(Failure) -> JSONValue {
        guard self.index < self.bytes.count else { throw self.failure("unexpected end") }
        switch self.bytes[self.index] {
        case UInt8(ascii: "{"):
            guard depth < Self.maximumDepth else { throw self.failure("nested deeper than \(Self.maximumDepth)") }
            self.index += 1
            var object: [String: JSONValue] = [:]
            self.skipSpace()
            if self.peek(UInt8(ascii: "}")) { return .object(object) }
            while true {
                self.skipSpace()
                guard self.peek(UInt8(ascii: "\""), consume: false) else { throw self.failure("expected a key") }
                let key = try self.string()
                self.skipSpace()
                guard self.peek(UInt8(ascii: ":")) else { throw self.failure("expected ':'") }
                self.skipSpace()
                object[key] = try self.value(depth: depth + 1)
                self.skipSpace()
                if self.peek(UInt8(ascii: ",")) { continue }
                guard self.peek(UInt8(ascii: "}")) else { throw self.failure("expected ',' or '}'") }
                return .object(object)
            }
        case UInt8(ascii: "["):
            guard depth < Self.maximumDepth else { throw self.failure("nested deeper than \(Self.maximumDepth)") }
            self.index += 1
            var array: [JSONValue] = []
            self.skipSpace()
            if self.peek(UInt8(ascii: "]")) { return .array(array) }
            while true {
                self.skipSpace()
                array.append(try self.value(depth: depth + 1))
                self.skipSpace()
                if self.peek(UInt8(ascii: ",")) { continue }
                guard self.peek(UInt8(ascii: "]")) else { throw self.failure("expected ',' or ']'") }
                return .array(array)
            }
        case UInt8(ascii: "\""):
            return .string(try self.string())
        case UInt8(ascii: "t"):
            try self.literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try self.literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try self.literal("null")
            return .null
        default:
            return try self.number()
        }
    }

    private mutating func peek(_ byte: UInt8, consume: Bool = true) -> Bool {
        guard self.index < self.bytes.count, self.bytes[self.index] == byte else { return false }
        if consume { self.index += 1 }
        return true
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw self.failure("unexpected end") }
        for offset in 0..<count where self.bytes[self.index + offset] != word.utf8Start[offset] { throw self.failure("unexpected character") }
        self.index += count
    }

    private mutating func number() throws(Failure) -> JSONValue {
        let start = self.index
        var integral = true
        if self.peek(UInt8(ascii: "-")) {}
        guard self.digits() > 0 else { throw self.failure("unexpected character") }
        if self.peek(UInt8(ascii: ".")) {
            integral = false
            guard self.digits() > 0 else { throw self.failure("expected digits after '.'") }
        }
        if self.peek(UInt8(ascii: "e")) || self.peek(UInt8(ascii: "E")) {
            integral = false
            if !self.peek(UInt8(ascii: "+")) { _ = self.peek(UInt8(ascii: "-")) }
            guard self.digits() > 0 else { throw self.failure("expected digits in the exponent") }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
        if integral, let integer = Int64(text) { return .integer(integer) }
        guard let double = Double(text), double.isFinite else { throw Failure(offset: start, problem: "number out of range") }
        if double == double.rounded(), abs(double) < 9.2e18, let integer = Int64(exactly: double) { return .integer(integer) }
        return .double(double)
    }

    private mutating func digits() -> Int {
        let start = self.index
        while self.index < self.bytes.count, self.bytes[self.index] >= 48, self.bytes[self.index] <= 57 { self.index += 1 }
        return self.index - start
    }

    /// A string literal, the opening quote at `index`.
    private mutating func string() throws(Failure) -> String {
        self.index += 1
        let start = self.index
        // Most strings hold no escape: taken whole.
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
                self.index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw self.failure("control character in a string") }
            self.index += 1
        }
        var text = Array(self.bytes[start..<self.index])
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            self.index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: text, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard self.index < self.bytes.count else { throw self.failure("unexpected end") }
                let escape = self.bytes[self.index]
                self.index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escape)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try self.hex4()
                    if (0xD800..<0xDC00).contains(scalar), self.index + 1 < self.bytes.count,
                        self.bytes[self.index] == UInt8(ascii: "\\"), self.bytes[self.index + 1] == UInt8(ascii: "u")
                    {
                        self.index += 2
                        let low = try self.hex4()
                        scalar = (0xDC00..<0xE000).contains(low) ? 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00) : 0xFFFD
                    }
                    // U+0000 has no place in text PostgreSQL stores: it reads as U+FFFD.
                    if scalar == 0 { scalar = 0xFFFD }
                    text.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
                default:
                    throw self.failure("unknown escape")
                }
            default:
                guard byte >= 0x20 else { throw self.failure("control character in a string") }
                text.append(byte)
            }
        }
        throw self.failure("unterminated string")
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw self.failure("unexpected end") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt8
            switch byte {
            case 48...57: digit = byte - 48
            case 65...70: digit = byte - 55
            case 97...102: digit = byte - 87
            default: throw self.failure("bad \\u escape")
            }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }
}
