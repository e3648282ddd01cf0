public import OneoWire
import Foundation

/// One value as prompt text. The same value always gives the same bytes (so the cache works):
/// strings as they are (a line break written `↵`, a fence tag's `<` written `＜`: see
/// `PromptFence`), numbers without float noise, money as `USD 1,234.50`, dates in ISO 8601, lists
/// of plain values joined with commas, structures as compact JSON with sorted keys, and long text
/// cut at the field's limit (in Unicode scalars) with a visible marker. A value about to be cut is
/// redacted whole first, so no part of a secret that straddles the cut is written.
public struct ValueFormatter: Sendable {
    public static let emptyMarker = "(empty)"

    public let maximumCharacters: Int
    /// Runs over a value before it is cut; nil: values are cut as they are.
    public let detector: SensitiveValueDetector?

    public init(maximumCharacters: Int, detector: SensitiveValueDetector? = nil) {
        self.maximumCharacters = maximumCharacters
        self.detector = detector
    }

    public func format(_ value: JSONValue, as type: FieldType = .text) -> String {
        var bytes: [UInt8] = []
        self.write(value, as: type, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `format`, appended to a byte buffer: how the renderer builds a prompt without a `String`
    /// per value.
    public func write(_ value: JSONValue, as type: FieldType = .text, to out: inout [UInt8]) {
        self.write(value, as: type, keeping: KeepEveryKey(), to: &out)
    }

    /// `write`, leaving out the nested keys `filter` refuses; returns how many it left out.
    @discardableResult
    public func write<Filter: JSONKeyFilter>(_ value: JSONValue, as type: FieldType = .text, keeping filter: Filter, to out: inout [UInt8]) -> Int {
        var redactions: [SensitiveValueDetector.Kind: Int] = [:]
        return self.write(value, as: type, keeping: filter, to: &out, redactions: &redactions)
    }

    /// `write`, adding what was redacted before a cut to `redactions`.
    public func write<Filter: JSONKeyFilter>(
        _ value: JSONValue, as type: FieldType = .text, keeping filter: Filter, to out: inout [UInt8],
        redactions: inout [SensitiveValueDetector.Kind: Int]
    ) -> Int {
        let start = out.count
        var omitted = 0
        switch value {
        case .null:
            out.append(contentsOf: Self.emptyMarker.utf8)
            return 0
        case .bool(let bool): out.append(contentsOf: (bool ? "true" : "false").utf8)
        case .integer(let integer):
            if type == .currency { Self.writeGrouped(Double(integer), decimals: 2, to: &out) } else { out.append(contentsOf: String(integer).utf8) }
        case .double(let double):
            if type == .currency { Self.writeGrouped(double, decimals: 2, to: &out) } else { out.appendUTF8(Self.number(double)) }
        case .string(let string):
            if type == .date || type == .datetime, Self.writeDate(string, to: &out) { break }
            Self.writeText(string, keeping: filter, omitted: &omitted, to: &out)
        case .array(let items):
            if items.allSatisfy({ if case .array = $0 { return false } else if case .object = $0 { return false } else { return true } }) {
                for (index, item) in items.enumerated() {
                    if index > 0 { out.append(contentsOf: ", ".utf8) }
                    omitted += ValueFormatter(maximumCharacters: Int.max).write(item, keeping: filter, to: &out, redactions: &redactions)
                }
            } else {
                value.writeJSON(to: &out, keeping: filter, omitted: &omitted)
            }
        case .object(let object):
            // Money only when neither of its keys is withheld; otherwise what is left is JSON.
            if !Self.writeMoney(object, keeping: filter, to: &out) { value.writeJSON(to: &out, keeping: filter, omitted: &omitted) }
        }
        self.truncate(&out, from: start, redactions: &redactions)
        return omitted
    }

    /// Cuts what was written from `start` to the field's limit, with a visible marker, after
    /// redacting it whole. A scalar is at least one byte: most values are decided without
    /// counting.
    private func truncate(_ out: inout [UInt8], from start: Int, redactions: inout [SensitiveValueDetector.Kind: Int]) {
        guard out.count - start > self.maximumCharacters, Self.scalarCount(out, from: start) > self.maximumCharacters else { return }
        if let detector = self.detector {
            for (kind, count) in detector.redact(&out, from: start) { redactions[kind, default: 0] += count }
        }
        let total = Self.scalarCount(out, from: start)
        guard total > self.maximumCharacters else { return }
        out.removeSubrange(Self.offset(ofScalar: self.maximumCharacters, in: out, from: start)...)
        out.append(contentsOf: "… [truncated \(total - self.maximumCharacters) characters]".utf8)
    }

    /// Unicode scalars in `bytes[start...]` (valid UTF-8): the bytes that do not continue one.
    public static func scalarCount(_ bytes: [UInt8], from start: Int = 0) -> Int {
        var count = 0
        for index in start..<bytes.count where bytes[index] & 0xC0 != 0x80 { count += 1 }
        return count
    }

    /// The byte offset at which scalar number `n` (from 0) after `start` begins, or the end.
    public static func offset(ofScalar n: Int, in bytes: [UInt8], from start: Int) -> Int {
        var seen = 0
        for index in start..<bytes.count where bytes[index] & 0xC0 != 0x80 {
            if seen == n { return index }
            seen += 1
        }
        return bytes.count
    }

    /// Writes a money object (`{"amount": 1234.5, "currency": "USD"}` → `USD 1,234.50`) and returns
    /// true, or writes nothing and returns false. The two entries are read by walking them:
    /// cheaper than hashing two lookups.
    static func writeMoney<Filter: JSONKeyFilter>(_ object: [String: JSONValue], keeping filter: Filter, to out: inout [UInt8]) -> Bool {
        guard object.count == 2 else { return false }
        var currency: String?
        var amountValue: JSONValue?
        for (key, value) in object {
            if key == "currency", case .string(let code) = value { currency = code } else if key == "amount" { amountValue = value }
        }
        guard let currency, let amountValue, currency.utf8.count == 3,
            currency.utf8.allSatisfy({ ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") })
        else { return false }
        let amount: Double
        switch amountValue {
        case .integer(let integer): amount = Double(integer)
        case .double(let double): amount = double
        case .string(let string): guard let parsed = Double(string) else { return false }; amount = parsed
        default: return false
        }
        // A tenant may name `amount` or `currency` sensitive: then the object is not money.
        guard filter.keepsMoneyKeys else { return false }
        for byte in currency.utf8 { out.append(byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte - 32 : byte) }
        out.append(UInt8(ascii: " "))
        Self.writeGrouped(amount, decimals: 2, to: &out)
        return true
    }

    /// Up to 12 significant digits: `0.1 + 0.2` prints `0.3`, `1e21` stays exact enough.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "Infinity" : "-Infinity") }
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        // Swift's shortest round-trip form is exact and fast; only when it shows float noise
        // (0.30000000000000004) fall back to 12 significant digits.
        let shortest = value.description
        if shortest.utf8.count <= 14 { return shortest }
        // Where %.12g prints without an exponent, rounding to 12 significant digits and taking the
        // shortest form gives the same digits, without a trip through NSString.
        let magnitude = Int(log10(abs(value)).rounded(.down))
        if (-4...11).contains(magnitude) {
            let scale = Self.powersOfTen[11 - magnitude]
            let rounded = ((value * scale).rounded() / scale).description
            if !rounded.utf8.contains(UInt8(ascii: "e")) { return rounded.hasSuffix(".0") ? String(rounded.dropLast(2)) : rounded }
        }
        var text = String(format: "%.12g", value)
        if text.contains("."), !text.contains("e") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }

    private static let powersOfTen: [Double] = (0...15).map { exponent in (0..<exponent).reduce(1.0) { value, _ in value * 10 } }

    /// `1234.5` → `1,234.50`, by integer arithmetic on the rounded cents.
    static func writeGrouped(_ value: Double, decimals: Int, to out: inout [UInt8]) {
        guard value.isFinite, abs(value) < 1e15 else {
            out.append(contentsOf: Self.number(value).utf8)
            return
        }
        var scale: Int64 = 1
        for _ in 0..<decimals { scale *= 10 }
        var scaled = Int64((abs(value) * Double(scale)).rounded())
        let negative = value < 0 && scaled != 0
        // Written backwards into a fixed buffer: fraction digits, the point, then the integer
        // digits with a comma every three, then the sign.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            var end = buffer.count
            func put(_ byte: UInt8) {
                end -= 1
                buffer[end] = byte
            }
            for _ in 0..<decimals {
                put(UInt8(ascii: "0") + UInt8(scaled % 10))
                scaled /= 10
            }
            if decimals > 0 { put(UInt8(ascii: ".")) }
            var digits = 0
            repeat {
                if digits > 0, digits % 3 == 0 { put(UInt8(ascii: ",")) }
                put(UInt8(ascii: "0") + UInt8(scaled % 10))
                scaled /= 10
                digits += 1
            } while scaled > 0
            if negative { put(UInt8(ascii: "-")) }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[end...]))
        }
    }

    /// Text as data: `preparedText`, then written with its line breaks and fence tags escaped
    /// (`PromptFence`), whichever path it took.
    static func writeText<Filter: JSONKeyFilter>(_ string: String, keeping filter: Filter, omitted: inout Int, to out: inout [UInt8]) {
        if let prepared = Self.preparedText(string, keeping: filter, omitted: &omitted) {
            prepared.withUnsafeBufferPointer { PromptFence.appendEscaped($0, to: &out) }
        } else {
            PromptFence.appendEscaped(string, to: &out)
        }
    }

    /// A string value as a prompt shows it, before escaping — at the top of a field or inside a
    /// JSON value alike: normalised first (`PromptFence.normalized`, so nothing invisible hides
    /// a key or a secret from what follows), then JSON held in it is filtered by key like any
    /// nested object, or key-value text that is no whole JSON has the values of withheld keys
    /// replaced (`KeyValueScrubber`). nil when the string is written as it is.
    static func preparedText<Filter: JSONKeyFilter>(_ string: String, keeping filter: Filter, omitted: inout Int) -> [UInt8]? {
        var string = string
        return string.withUTF8 { original -> [UInt8]? in
            func filtered(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
                if let json = EmbeddedJSON.filtered(bytes, keeping: filter, omitted: &omitted) { return json }
                guard let (scrubbed, count) = KeyValueScrubber.scrub(bytes, keeping: filter) else { return nil }
                omitted += count
                return scrubbed
            }
            guard !PromptFence.isPlain(original), let normal = PromptFence.normalized(original) else { return filtered(original) }
            return normal.withUnsafeBufferPointer { filtered($0) } ?? normal
        }
    }

    /// A date stays `YYYY-MM-DD`; a timestamp (`YYYY-MM-DDTHH:MM[:SS[.fff]](Z|±HH:MM)`) becomes UTC
    /// `YYYY-MM-DDTHH:MM:SSZ`. Returns false for anything else, which is written as text.
    static func writeDate(_ string: String, to out: inout [UInt8]) -> Bool {
        let bytes = string.utf8
        if bytes.count == 10 || bytes.count == 20, let isPlain = bytes.withContiguousStorageIfAvailable({ Self.isISODate($0) }), isPlain {
            out.appendUTF8(string)
            return true
        }
        let converted = bytes.withContiguousStorageIfAvailable(Self.utcTimestamp) ?? Array(bytes).withUnsafeBufferPointer(Self.utcTimestamp)
        guard let converted else { return false }
        out.appendUTF8(converted)
        return true
    }

    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`, digits where digits go: already in the form a prompt shows.
    static func isISODate(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let shape: StaticString = "dddd-dd-ddTdd:dd:ddZ"
        for index in 0..<bytes.count {
            let expected = shape.utf8Start[index]
            let byte = bytes[index]
            if expected == UInt8(ascii: "d") ? !(byte >= 48 && byte <= 57) : byte != expected { return false }
        }
        return true
    }

    /// The UTC form of a timestamp that is not already in it; nil for a date, a timestamp already
    /// in UTC form, or text that is neither. Parsed by hand, in place: a date formatter per value
    /// would cost more than the rest of the prompt.
    static func utcTimestamp(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= bytes.count else { return nil }
            var value = 0
            for byte in UnsafeBufferPointer(rebasing: bytes[from..<(from + count)]) {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard let year = number(0, 4), bytes.count >= 10, bytes[4] == 45, let month = number(5, 2), bytes[7] == 45, let day = number(8, 2),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        if bytes.count == 10 { return nil }
        guard bytes[10] == 84 || bytes[10] == 32, let hour = number(11, 2), bytes.count > 13, bytes[13] == 58, let minute = number(14, 2) else { return nil }
        var index = 16
        var second = 0
        if index < bytes.count, bytes[index] == 58 {
            guard let parsed = number(index + 1, 2) else { return nil }
            second = parsed
            index += 3
            if index < bytes.count, bytes[index] == 46 {
                index += 1
                while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            }
        }
        var offsetMinutes = 0
        if index < bytes.count, bytes[index] == 90 {
            index += 1
        } else if index < bytes.count, bytes[index] == 43 || bytes[index] == 45, let offsetHours = number(index + 1, 2) {
            let sign = bytes[index] == 43 ? 1 : -1
            var offset = offsetHours * 60
            index += 3
            if index < bytes.count, bytes[index] == 58 { index += 1 }
            if let minutes = number(index, 2) {
                offset += minutes
                index += 2
            }
            offsetMinutes = sign * offset
        } else {
            return nil
        }
        guard index == bytes.count, hour < 24, minute < 60, second < 61 else { return nil }
        // Already `YYYY-MM-DDTHH:MM:SSZ`: nothing to convert.
        if bytes.count == 20, bytes[10] == 84, bytes[19] == 90, second < 60 { return nil }
        let total = Self.daysFromCivil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second - offsetMinutes * 60
        let days = Int((Double(total) / 86_400).rounded(.down))
        let seconds = total - days * 86_400
        let (y, m, d) = Self.civilFromDays(days)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        return "\(y)-\(two(m))-\(two(d))T\(two(seconds / 3_600)):\(two(seconds % 3_600 / 60)):\(two(seconds % 60))Z"
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
