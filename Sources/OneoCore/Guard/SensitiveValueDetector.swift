/// Finds secrets and personal identifiers in the final prompt text, values included, and replaces
/// each with `[REDACTED:kind]`. One pass over the UTF-8 bytes with hand-written matchers: the
/// checksums (Luhn for cards, mod 97 for IBANs) keep ordinary numbers and words out.
public struct SensitiveValueDetector: Sendable {
    public enum Kind: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
        case card, ssn, iban, apiKey = "api_key", awsKey = "aws_key", jwt, privateKey = "private_key", email, phone

        public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// Kinds that are personal but often the point of a prompt; a field's config opts into them.
    public static let optIn: Set<Kind> = [.email, .phone]

    public let kinds: Set<Kind>
    /// The same set as flags: the matchers ask per candidate, and a set lookup hashes.
    private let card, ssn, iban, apiKey, awsKey, jwt, privateKey, email, phone: Bool
    /// Per byte value, what the scanner needs to know of it for these kinds: whether it is a word
    /// byte, and whether a match can start with it (at a word start, or anywhere for a PEM dash).
    /// One table lookup per byte instead of a chain of comparisons.
    private let byteClasses: [UInt8]
    private static let wordByte: UInt8 = 1
    private static let startsAtWord: UInt8 = 2
    private static let startsAnywhere: UInt8 = 4

    public init(alsoRedact extra: Set<Kind> = []) {
        self.init(only: Set(Kind.allCases).subtracting(Self.optIn).union(extra))
    }

    /// Exactly these kinds; the benchmark uses none to measure the detectors' share.
    public init(only kinds: Set<Kind>) {
        self.kinds = kinds
        (self.card, self.ssn, self.iban, self.apiKey, self.awsKey) = (kinds.contains(.card), kinds.contains(.ssn), kinds.contains(.iban), kinds.contains(.apiKey), kinds.contains(.awsKey))
        (self.jwt, self.privateKey, self.email, self.phone) = (kinds.contains(.jwt), kinds.contains(.privateKey), kinds.contains(.email), kinds.contains(.phone))
        var classes = [UInt8](repeating: 0, count: 256)
        for byte in 0...UInt8.max {
            var starts = false
            if Self.isDigit(byte) { starts = self.ssn || self.card || self.phone }
            if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "(") { starts = starts || self.phone }
            if byte == UInt8(ascii: "s") { starts = starts || self.apiKey }
            if byte == UInt8(ascii: "A") { starts = starts || self.awsKey }
            if byte == UInt8(ascii: "e") { starts = starts || self.jwt }
            if Self.isUpper(byte) { starts = starts || self.iban }
            if Self.isWordByte(byte) { starts = starts || self.email }
            classes[Int(byte)] = (Self.isWordByte(byte) ? Self.wordByte : 0) | (starts ? Self.startsAtWord : 0)
                | (byte == UInt8(ascii: "-") && self.privateKey ? Self.startsAnywhere : 0)
        }
        self.byteClasses = classes
    }

    public struct Result: Sendable, Hashable {
        public let text: String
        public let counts: [Kind: Int]
    }

    public func redact(_ text: String) -> Result {
        guard !self.kinds.isEmpty else { return Result(text: text, counts: [:]) }
        var text = text
        let (redacted, counts) = text.withUTF8 { self.scan($0) }
        return Result(text: redacted.map { String(decoding: $0, as: UTF8.self) } ?? text, counts: counts)
    }

    /// `redact` over a prompt still in bytes: the renderer's buffer becomes a `String` once.
    public func redact(bytes: [UInt8]) -> Result {
        guard !self.kinds.isEmpty else { return Result(text: String(decoding: bytes, as: UTF8.self), counts: [:]) }
        let (redacted, counts) = bytes.withUnsafeBufferPointer { self.scan($0) }
        return Result(text: String(decoding: redacted ?? bytes, as: UTF8.self), counts: counts)
    }

    /// The redacted bytes (nil when nothing matched) and the counts per kind.
    private func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> ([UInt8]?, [Kind: Int]) {
        var output: [UInt8] = []
        var counts: [Kind: Int] = [:]
        var copied = 0
        var index = 0
        self.byteClasses.withUnsafeBufferPointer { classes in
            var previousIsWord = false
            while index < bytes.count {
                // Only a token's first byte (or a PEM dash) can start a match: skip the rest fast.
                let byteClass = classes[Int(bytes[index])]
                if byteClass & Self.startsAnywhere != 0 || (byteClass & Self.startsAtWord != 0 && !previousIsWord),
                    let (kind, length) = self.match(bytes, at: index)
                {
                    if output.isEmpty { output.reserveCapacity(bytes.count) }
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied..<index]))
                    output.append(contentsOf: "[REDACTED:\(kind.rawValue)]".utf8)
                    counts[kind, default: 0] += 1
                    index += length
                    copied = index
                    previousIsWord = classes[Int(bytes[index - 1])] & Self.wordByte != 0
                    continue
                }
                previousIsWord = byteClass & Self.wordByte != 0
                index += 1
            }
        }
        guard !counts.isEmpty else { return (nil, [:]) }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied...]))
        return (output, counts)
    }

    // MARK: Matchers

    private func match(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (Kind, Int)? {
        let byte = bytes[index]
        if byte == UInt8(ascii: "-") {
            if self.privateKey, let length = Self.privateKey(bytes, index) { return (.privateKey, length) }
            return nil
        }
        guard index == 0 || !Self.isWordByte(bytes[index - 1]) else { return nil }
        if Self.isDigit(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "(") {
            if self.ssn, let length = Self.ssn(bytes, index) { return (.ssn, length) }
            if self.card, let length = Self.card(bytes, index) { return (.card, length) }
            if self.phone, let length = Self.phone(bytes, index) { return (.phone, length) }
            return nil
        }
        if byte == UInt8(ascii: "s"), self.apiKey, let length = Self.prefixedToken(bytes, index, prefix: "sk-", minimumBody: 20) { return (.apiKey, length) }
        if byte == UInt8(ascii: "A"), self.awsKey, let length = Self.awsKey(bytes, index) { return (.awsKey, length) }
        if byte == UInt8(ascii: "e"), self.jwt, let length = Self.jwt(bytes, index) { return (.jwt, length) }
        if Self.isUpper(byte), self.iban, let length = Self.iban(bytes, index) { return (.iban, length) }
        if self.email, Self.isWordByte(byte), let length = Self.email(bytes, index) { return (.email, length) }
        return nil
    }

    /// 13 to 19 digits, optionally grouped by single spaces or dashes, passing the Luhn check.
    static func card(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        // Cheap first: at least 13 digits within the next 23 bytes, before collecting them.
        var quick = 0
        var scan = start
        while scan < bytes.count, scan < start + 23, Self.isDigit(bytes[scan]) || bytes[scan] == UInt8(ascii: " ") || bytes[scan] == UInt8(ascii: "-") {
            if Self.isDigit(bytes[scan]) { quick += 1 }
            scan += 1
        }
        guard quick >= 13 else { return nil }
        var digits: [Int] = []
        var index = start
        var end = start
        while index < bytes.count, digits.count < 19 {
            let byte = bytes[index]
            if Self.isDigit(byte) {
                digits.append(Int(byte - 48))
                index += 1
                end = index
            } else if (byte == UInt8(ascii: " ") || byte == UInt8(ascii: "-")), index + 1 < bytes.count, Self.isDigit(bytes[index + 1]), !digits.isEmpty {
                index += 1
            } else {
                break
            }
        }
        guard digits.count >= 13, end == bytes.count || !Self.isDigit(bytes[end]) || digits.count == 19 else { return nil }
        // Longest Luhn-valid prefix of at least 13 digits.
        for count in stride(from: digits.count, through: 13, by: -1) where Self.luhn(digits.prefix(count)) {
            var consumed = 0
            var taken = 0
            while taken < count {
                if Self.isDigit(bytes[start + consumed]) { taken += 1 }
                consumed += 1
            }
            if start + consumed < bytes.count, Self.isDigit(bytes[start + consumed]) { return nil }
            return consumed
        }
        return nil
    }

    static func luhn(_ digits: ArraySlice<Int>) -> Bool {
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            if offset % 2 == 1 {
                let doubled = digit * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += digit
            }
        }
        return sum % 10 == 0
    }

    /// `AAA-GG-SSSS` with a possible area (not 000), group (not 00) and serial (not 0000).
    static func ssn(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        let shape = "ddd-dd-dddd"
        // The dashes decide almost every candidate (dates, amounts, counts) before the loop.
        guard start + 11 <= bytes.count, bytes[start + 3] == UInt8(ascii: "-"), bytes[start + 6] == UInt8(ascii: "-") else { return nil }
        for (offset, expected) in shape.utf8.enumerated() {
            let byte = bytes[start + offset]
            if expected == UInt8(ascii: "d") ? !Self.isDigit(byte) : byte != expected { return nil }
        }
        let end = start + shape.utf8.count
        if end < bytes.count, Self.isWordByte(bytes[end]) || bytes[end] == UInt8(ascii: "-") { return nil }
        func number(_ from: Int, _ count: Int) -> Int { bytes[(start + from)..<(start + from + count)].reduce(0) { $0 * 10 + Int($1 - 48) } }
        guard number(0, 3) != 0, number(4, 2) != 0, number(7, 4) != 0 else { return nil }
        return shape.utf8.count
    }

    /// Two letters, two check digits, 11 to 30 letters or digits (groups of four may be spaced),
    /// passing the ISO 13616 mod-97 check.
    static func iban(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        guard start + 15 <= bytes.count, Self.isUpper(bytes[start + 1]), Self.isDigit(bytes[start + 2]), Self.isDigit(bytes[start + 3]) else { return nil }
        var characters: [UInt8] = []
        var index = start
        var end = start
        while index < bytes.count, characters.count < 34 {
            let byte = bytes[index]
            if Self.isUpper(byte) || Self.isDigit(byte) {
                characters.append(byte)
                index += 1
                end = index
            } else if byte == UInt8(ascii: " "), index + 1 < bytes.count, Self.isUpper(bytes[index + 1]) || Self.isDigit(bytes[index + 1]), characters.count % 4 == 0, characters.count >= 4 {
                index += 1
            } else {
                break
            }
        }
        guard characters.count >= 15, Self.isUpper(characters[0]), Self.isUpper(characters[1]), Self.isDigit(characters[2]), Self.isDigit(characters[3]) else { return nil }
        guard end == bytes.count || !Self.isWordByte(bytes[end]) else { return nil }
        var remainder = 0
        for byte in characters[4...] + characters[..<4] {
            let value = Self.isDigit(byte) ? Int(byte - 48) : Int(byte - 55)
            remainder = value >= 10 ? (remainder * 100 + value) % 97 : (remainder * 10 + value) % 97
        }
        return remainder == 1 ? end - start : nil
    }

    static func prefixedToken(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, prefix: StaticString, minimumBody: Int) -> Int? {
        guard Self.hasPrefix(bytes, start, prefix) else { return nil }
        var index = start + prefix.utf8CodeUnitCount
        while index < bytes.count, Self.isWordByte(bytes[index]) || bytes[index] == UInt8(ascii: "-") { index += 1 }
        return index - start - prefix.utf8CodeUnitCount >= minimumBody ? index - start : nil
    }

    /// `AKIA` or `ASIA` and 16 upper-case letters or digits.
    static func awsKey(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        guard start + 20 <= bytes.count else { return nil }
        guard Self.hasPrefix(bytes, start, "AKIA") || Self.hasPrefix(bytes, start, "ASIA") else { return nil }
        guard bytes[(start + 4)..<(start + 20)].allSatisfy({ Self.isUpper($0) || Self.isDigit($0) }) else { return nil }
        if start + 20 < bytes.count, Self.isWordByte(bytes[start + 20]) { return nil }
        return 20
    }

    /// Three base64url segments, the first starting `eyJ` (a JSON header).
    static func jwt(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        guard Self.hasPrefix(bytes, start, "eyJ") else { return nil }
        var index = start
        var segments = 1
        var segmentLength = 0
        while index < bytes.count {
            let byte = bytes[index]
            if Self.isWordByte(byte) || byte == UInt8(ascii: "-") {
                segmentLength += 1
            } else if byte == UInt8(ascii: "."), segmentLength > 0, segments < 3 {
                segments += 1
                segmentLength = 0
            } else {
                break
            }
            index += 1
        }
        return segments == 3 && segmentLength > 0 && index - start >= 20 ? index - start : nil
    }

    /// A PEM private key block, whole.
    static func privateKey(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        let begin = "-----BEGIN ".utf8
        guard start + begin.count < bytes.count, Self.hasPrefix(bytes, start, "-----BEGIN ") else { return nil }
        let header = bytes[start...].prefix(80)
        guard String(decoding: header, as: UTF8.self).split(separator: "\n").first?.contains("PRIVATE KEY-----") == true else { return nil }
        let endMarker = Array("-----END ".utf8)
        var index = start + begin.count
        while index + endMarker.count <= bytes.count {
            if bytes[index] == UInt8(ascii: "-"), Array(bytes[index..<(index + endMarker.count)]) == endMarker {
                var close = index + endMarker.count
                var dashes = 0
                while close < bytes.count, dashes < 5 {
                    dashes = bytes[close] == UInt8(ascii: "-") ? dashes + 1 : 0
                    close += 1
                }
                return close - start
            }
            index += 1
        }
        return bytes.count - start
    }

    static func email(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        var index = start
        while index < bytes.count, Self.isWordByte(bytes[index]) || bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index > start, index < bytes.count, bytes[index] == UInt8(ascii: "@") else { return nil }
        index += 1
        let domainStart = index
        var lastDot = -1
        while index < bytes.count, Self.isWordByte(bytes[index]) || bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: "-") {
            if bytes[index] == UInt8(ascii: ".") { lastDot = index }
            index += 1
        }
        while index > domainStart, bytes[index - 1] == UInt8(ascii: ".") { index -= 1 }
        guard lastDot > domainStart, lastDot < index - 2 else { return nil }
        return index - start
    }

    /// 10 to 15 digits in a phone-like layout: optional `+`, groups split by spaces, dashes,
    /// dots or parentheses.
    static func phone(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        var quick = 0
        var scan = start
        while scan < bytes.count, scan < start + 24, quick < 10 {
            if Self.isDigit(bytes[scan]) { quick += 1 } else if !" -.()+".utf8.contains(bytes[scan]) { break }
            scan += 1
        }
        guard quick >= 10 else { return nil }
        let separators: [UInt8] = [UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "("), UInt8(ascii: ")")]
        var index = start
        var digits = 0
        var end = start
        if bytes[index] == UInt8(ascii: "+") { index += 1 }
        while index < bytes.count {
            let byte = bytes[index]
            if Self.isDigit(byte) {
                digits += 1
                index += 1
                end = index
                continue
            }
            // At most two separators in a row (`) ` in `(555) 123`), and a digit after them.
            guard separators.contains(byte) else { break }
            var next = index + 1
            if next < bytes.count, separators.contains(bytes[next]) { next += 1 }
            guard next < bytes.count, Self.isDigit(bytes[next]) else { break }
            index = next
        }
        guard (10...15).contains(digits), end == bytes.count || !Self.isWordByte(bytes[end]) else { return nil }
        return end - start
    }

    /// Whether `ascii` is at `start`, compared byte by byte (a slice's `elementsEqual` against a
    /// `String.UTF8View` goes through the generic iterator path, at every candidate).
    static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ ascii: StaticString) -> Bool {
        guard start + ascii.utf8CodeUnitCount <= bytes.count else { return false }
        let expected = UnsafeBufferPointer(start: ascii.utf8Start, count: ascii.utf8CodeUnitCount)
        for offset in 0..<expected.count where bytes[start + offset] != expected[offset] { return false }
        return true
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
    @inline(__always) static func isUpper(_ byte: UInt8) -> Bool { byte >= 65 && byte <= 90 }
    @inline(__always) static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 95 || byte >= 128
    }
}
