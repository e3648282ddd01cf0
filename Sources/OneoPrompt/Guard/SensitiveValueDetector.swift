public import OneoWire
/// Finds secrets and personal identifiers in prompt text, values included, and replaces each with
/// `[REDACTED:kind]`. One pass over the UTF-8 bytes with hand-written matchers: the checksums
/// (Luhn for cards, mod 97 for IBANs) keep ordinary numbers and words out.
///
/// Everything it reads is written by someone else, so the pass is linear in the bytes it reads,
/// whatever they are: every matcher either reads a bounded number of bytes from its start, or,
/// when it read a long run and failed, moves its own frontier past the run, so no later start
/// inside that run is tried again (the run could not match from there either).
///
/// Boundaries: a token (a key, a JWT, an IBAN, an e-mail) starts where the byte before it is not
/// an ASCII letter, digit or `_`; a number (a card, an SSN, a phone) where the byte before it is
/// not a digit. Every byte of a non-ASCII scalar is a boundary: a key written against CJK text, a
/// full-width colon, a non-breaking space or an emoji is still a key. A JSON escape (`\n`, `\t`,
/// …) before a token is a boundary too.
public struct SensitiveValueDetector: Sendable {
    /// The kinds of value the detectors find (the type lives with the field config, which names them).
    public typealias Kind = RedactionKind

    /// Kinds that are personal but often the point of a prompt; a field's config opts into them.
    public static let optIn: Set<Kind> = RedactionKind.optIn

    public let kinds: Set<Kind>
    /// The same set as flags: the matchers ask per candidate, and a set lookup hashes.
    private let card, ssn, iban, apiKey, awsKey, jwt, privateKey, email, phone: Bool
    /// Per byte value, what the scanner needs to know of it for these kinds: whether it is a word
    /// byte, a digit, and which kind of start it can be. One table lookup per byte.
    private let byteClasses: [UInt8]
    private static let wordByte: UInt8 = 1
    private static let digitByte: UInt8 = 2
    /// Starts a token: the byte before must not be a word byte.
    private static let startsToken: UInt8 = 4
    /// Starts a number: the byte before must not be a digit.
    private static let startsNumber: UInt8 = 8
    /// A PEM dash: starts where the byte before is not a dash.
    private static let startsBlock: UInt8 = 16

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
            var token = false
            var number = false
            if Self.isDigit(byte) { number = self.ssn || self.card || self.phone }
            if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "(") { number = number || self.phone }
            if UnsafeBufferPointer(start: Self.tokenFirstBytes.utf8Start, count: Self.tokenFirstBytes.utf8CodeUnitCount).contains(byte) { token = token || self.apiKey }
            if byte == UInt8(ascii: "A") { token = token || self.awsKey || self.apiKey }
            if byte == UInt8(ascii: "e") { token = token || self.jwt }
            if Self.isUpper(byte) { token = token || self.iban }
            if Self.isWordByte(byte) { token = token || self.email }
            classes[Int(byte)] = (Self.isWordByte(byte) ? Self.wordByte : 0) | (Self.isDigit(byte) ? Self.digitByte : 0)
                | (token ? Self.startsToken : 0) | (number ? Self.startsNumber : 0)
                | (byte == UInt8(ascii: "-") && self.privateKey ? Self.startsBlock : 0)
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

    /// Redacts `buffer[start...]` in place, as text of its own (its first byte starts a token):
    /// how a value is redacted whole before it is cut to its limit, so no part of a secret that
    /// straddles the cut survives it.
    /// The bytes before `start` are context only (an `SSN:` label before the value is seen);
    /// matches start at `start` or later.
    public func redact(_ buffer: inout [UInt8], from start: Int) -> [Kind: Int] {
        guard !self.kinds.isEmpty, start < buffer.count else { return [:] }
        let (redacted, counts) = buffer.withUnsafeBufferPointer { self.scan($0, from: start) }
        if let redacted { buffer.replaceSubrange(start..., with: redacted) }
        return counts
    }

    /// Where the matchers that read long runs may start again: each is moved past a run it read
    /// and failed on, so a run is read a bounded number of times however many starts it holds.
    private struct Frontiers {
        var jwt = 0
        var email = 0
        var phone = 0
        var card = CardRun()
        var iban = IBANRun()
        /// The next `@` at or after the last e-mail start (the end when there is none).
        var nextAt = -1
    }

    /// The redacted bytes from `first` on (nil when nothing matched) and the counts per kind.
    private func scan(_ bytes: UnsafeBufferPointer<UInt8>, from first: Int = 0) -> ([UInt8]?, [Kind: Int]) {
        var output: [UInt8] = []
        var counts: [Kind: Int] = [:]
        var copied = first
        var index = first
        var frontiers = Frontiers()
        frontiers.jwt = first
        frontiers.email = first
        frontiers.phone = first
        self.byteClasses.withUnsafeBufferPointer { classes in
            // The class of the byte before `index`; the text starts after a boundary.
            var previous: UInt8 = first > 0 ? classes[Int(bytes[first - 1])] : 0
            var previousByte: UInt8 = first > 0 ? bytes[first - 1] : UInt8(ascii: " ")
            while index < bytes.count {
                let byte = bytes[index]
                let byteClass = classes[Int(byte)]
                if byteClass & (Self.startsToken | Self.startsNumber | Self.startsBlock) != 0 {
                    let afterWord = byteClass & Self.startsToken != 0
                        && (previous & Self.wordByte == 0 || Self.followsEscape(bytes, index))
                    let afterDigit = byteClass & Self.startsNumber != 0 && (previous & Self.digitByte == 0 || Self.followsUnicodeEscape(bytes, index))
                    let block = byteClass & Self.startsBlock != 0 && previousByte != UInt8(ascii: "-")
                    if afterWord || afterDigit || block,
                        let (kind, length) = self.match(bytes, at: index, token: afterWord, number: afterDigit, block: block, frontiers: &frontiers)
                    {
                        if output.isEmpty { output.reserveCapacity(bytes.count) }
                        output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied..<index]))
                        output.append(contentsOf: "[REDACTED:\(kind.rawValue)]".utf8)
                        counts[kind, default: 0] += 1
                        index += length
                        copied = index
                        // The marker ends in `]`: what follows starts after a boundary.
                        previous = 0
                        previousByte = UInt8(ascii: "]")
                        continue
                    }
                }
                previous = byteClass
                previousByte = byte
                index += 1
            }
        }
        guard !counts.isEmpty else { return (nil, [:]) }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied...]))
        return (output, counts)
    }

    /// `\n`, `\t` and the other one-letter JSON escapes, and `\u000c`-style ones, end a word as
    /// the characters they stand for do: a secret written after one is still found.
    @inline(__always)
    private static func followsEscape(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int) -> Bool {
        if index >= 2, bytes[index - 2] == UInt8(ascii: "\\"), "nrtbf".utf8.contains(bytes[index - 1]) { return true }
        return Self.followsUnicodeEscape(bytes, index)
    }

    /// Whether `\uXXXX` ends just before `index`.
    private static func followsUnicodeEscape(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int) -> Bool {
        guard index >= 6, bytes[index - 6] == UInt8(ascii: "\\"), bytes[index - 5] == UInt8(ascii: "u") else { return false }
        for offset in 1...4 {
            let byte = bytes[index - offset]
            guard Self.isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f")) else { return false }
        }
        return true
    }

    // MARK: Matchers

    private func match(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, token: Bool, number: Bool, block: Bool, frontiers: inout Frontiers) -> (Kind, Int)? {
        let byte = bytes[index]
        if block {
            if let length = Self.privateKey(bytes, index) { return (.privateKey, length) }
            return nil
        }
        if number {
            if self.ssn, let length = Self.ssn(bytes, index) { return (.ssn, length) }
            if self.card, Self.isDigit(byte), let length = frontiers.card.match(bytes, at: index) { return (.card, length) }
            if self.phone, index >= frontiers.phone, let length = Self.phone(bytes, index, frontier: &frontiers.phone) { return (.phone, length) }
        }
        guard token else { return nil }
        if self.apiKey, let length = Self.providerKey(bytes, index) { return (.apiKey, length) }
        if byte == UInt8(ascii: "A"), self.awsKey, let length = Self.awsKey(bytes, index) { return (.awsKey, length) }
        if byte == UInt8(ascii: "e"), self.jwt, index >= frontiers.jwt, let length = Self.jwt(bytes, index, frontier: &frontiers.jwt) { return (.jwt, length) }
        if Self.isUpper(byte), self.iban, let length = frontiers.iban.match(bytes, at: index) { return (.iban, length) }
        if self.email, index >= frontiers.email, Self.isWordByte(byte) {
            // A local part is at most 64 bytes (RFC 5321): with no `@` that near, no address
            // starts here, nor before 64 bytes ahead of the next `@`.
            if frontiers.nextAt < index {
                var at = index
                while at < bytes.count, bytes[at] != UInt8(ascii: "@") { at += 1 }
                frontiers.nextAt = at
            }
            if frontiers.nextAt - index > 64 {
                frontiers.email = frontiers.nextAt - 64
                return nil
            }
            if let length = Self.email(bytes, index, frontier: &frontiers.email) { return (.email, length) }
        }
        return nil
    }

    /// The first bytes of the provider key formats below, and of AWS keys.
    private static let tokenFirstBytes: StaticString = "srgxA"

    /// A provider's secret key by its published prefix, with at least so many more letters,
    /// digits, `_` or `-`: OpenAI and Anthropic (`sk-`), Stripe (`sk_live_`, `rk_live_`, and their
    /// test forms), GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), GitLab
    /// (`glpat-`), Slack (`xoxb-` and its kin) and Google (`AIza`). Dispatched on the first byte:
    /// most words that start with one of these letters are rejected by the second.
    static func providerKey(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        guard start + 4 < bytes.count else { return nil }
        let second = bytes[start + 1]
        switch bytes[start] {
        case UInt8(ascii: "s"):
            guard second == UInt8(ascii: "k") else { return nil }
            return Self.prefixedToken(bytes, start, prefix: "sk-", minimumBody: 20)
                ?? Self.prefixedToken(bytes, start, prefix: "sk_live_", minimumBody: 16)
                ?? Self.prefixedToken(bytes, start, prefix: "sk_test_", minimumBody: 16)
        case UInt8(ascii: "r"):
            guard second == UInt8(ascii: "k") else { return nil }
            return Self.prefixedToken(bytes, start, prefix: "rk_live_", minimumBody: 16)
                ?? Self.prefixedToken(bytes, start, prefix: "rk_test_", minimumBody: 16)
        case UInt8(ascii: "g"):
            switch second {
            case UInt8(ascii: "h"):
                guard bytes[start + 3] == UInt8(ascii: "_"), "pousr".utf8.contains(bytes[start + 2]) else { return nil }
                return Self.prefixedToken(bytes, start, prefix: "gh__", minimumBody: 30, wildcard: 2)
            case UInt8(ascii: "i"): return Self.prefixedToken(bytes, start, prefix: "github_pat_", minimumBody: 30)
            case UInt8(ascii: "l"): return Self.prefixedToken(bytes, start, prefix: "glpat-", minimumBody: 20)
            default: return nil
            }
        case UInt8(ascii: "x"):
            guard second == UInt8(ascii: "o"), bytes[start + 2] == UInt8(ascii: "x"), bytes[start + 4] == UInt8(ascii: "-"),
                "bpaser".utf8.contains(bytes[start + 3])
            else { return nil }
            return Self.prefixedToken(bytes, start, prefix: "xox_-", minimumBody: 10, wildcard: 3)
        case UInt8(ascii: "A"):
            guard second == UInt8(ascii: "I") else { return nil }
            return Self.prefixedToken(bytes, start, prefix: "AIza", minimumBody: 30)
        default:
            return nil
        }
    }

    /// `AAA-GG-SSSS` with a possible area (not 000), group (not 00) and serial (not 0000). Written
    /// with spaces, dots or no separator it is an SSN only where the text just before names one
    /// (`SSN`, `social security`): nine digits alone are too often something else.
    static func ssn(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        guard start + 9 <= bytes.count, Self.isDigit(bytes[start]), Self.isDigit(bytes[start + 1]), Self.isDigit(bytes[start + 2]) else { return nil }
        let separator = bytes[start + 3]
        let length: Int
        var offsets: (area: Int, group: Int, serial: Int)
        if separator == UInt8(ascii: "-") || separator == UInt8(ascii: " ") || separator == UInt8(ascii: ".") {
            // The separators decide almost every candidate (dates, amounts, counts) first.
            guard start + 11 <= bytes.count, bytes[start + 6] == separator else { return nil }
            for offset in [4, 5, 7, 8, 9, 10] where !Self.isDigit(bytes[start + offset]) { return nil }
            length = 11
            offsets = (0, 4, 7)
        } else if Self.isDigit(separator) {
            for offset in 4..<9 where !Self.isDigit(bytes[start + offset]) { return nil }
            length = 9
            offsets = (0, 3, 5)
        } else {
            return nil
        }
        // A number ends where digits do (letters after it are a boundary, as before it).
        let end = start + length
        if end < bytes.count, Self.isDigit(bytes[end]) { return nil }
        if end + 1 < bytes.count, bytes[end] == separator || bytes[end] == UInt8(ascii: "-"), Self.isDigit(bytes[end + 1]) { return nil }
        func number(_ from: Int, _ count: Int) -> Int { bytes[(start + from)..<(start + from + count)].reduce(0) { $0 * 10 + Int($1 - 48) } }
        guard number(offsets.area, 3) != 0, number(offsets.group, 2) != 0, number(offsets.serial, 4) != 0 else { return nil }
        if separator != UInt8(ascii: "-"), !Self.namesSSN(before: start, in: bytes) { return nil }
        return length
    }

    /// Whether the 48 bytes before `start` name a social security number, in any case.
    private static func namesSSN(before start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let from = max(0, start - 48)
        func lowered(_ byte: UInt8) -> UInt8 { Self.isUpper(byte) ? byte + 32 : byte }
        func names(_ word: StaticString, at index: Int) -> Bool {
            let count = word.utf8CodeUnitCount
            guard index + count <= start else { return false }
            for offset in 0..<count where lowered(bytes[index + offset]) != word.utf8Start[offset] { return false }
            return true
        }
        for index in from..<start {
            let byte = lowered(bytes[index])
            if byte == UInt8(ascii: "s"), names("ssn", at: index) || names("social security", at: index) || names("social_security", at: index) { return true }
        }
        return false
    }

    /// The IBAN length of a country (ISO 13616 registry), by its two upper-case letters; 0 for
    /// a code that has no IBAN.
    static func ibanLength(_ first: UInt8, _ second: UInt8) -> Int {
        switch (first, second) {
        case (0x4E, 0x4F): return 15  // NO
        case (0x42, 0x45): return 16  // BE
        case (0x44, 0x4B), (0x46, 0x49), (0x46, 0x4F), (0x47, 0x4C), (0x4E, 0x4C), (0x53, 0x44), (0x46, 0x4B): return 18  // DK FI FO GL NL SD FK
        case (0x4D, 0x4B), (0x53, 0x49): return 19  // MK SI
        case (0x41, 0x54), (0x42, 0x41), (0x45, 0x45), (0x4B, 0x5A), (0x4C, 0x54), (0x4C, 0x55), (0x58, 0x4B), (0x4D, 0x4E): return 20  // AT BA EE KZ LT LU XK MN
        case (0x43, 0x48), (0x48, 0x52), (0x4C, 0x49), (0x4C, 0x56): return 21  // CH HR LI LV
        case (0x42, 0x47), (0x42, 0x48), (0x43, 0x52), (0x44, 0x45), (0x47, 0x42), (0x47, 0x45), (0x49, 0x45), (0x4D, 0x45), (0x52, 0x53), (0x56, 0x41): return 22  // BG BH CR DE GB GE IE ME RS VA
        case (0x41, 0x45), (0x47, 0x49), (0x49, 0x4C), (0x49, 0x51), (0x54, 0x4C), (0x53, 0x4F), (0x4F, 0x4D): return 23  // AE GI IL IQ TL SO OM
        case (0x41, 0x44), (0x43, 0x5A), (0x45, 0x53), (0x4D, 0x44), (0x50, 0x4B), (0x52, 0x4F), (0x53, 0x41), (0x53, 0x45), (0x53, 0x4B), (0x54, 0x4E), (0x56, 0x47): return 24  // AD CZ ES MD PK RO SA SE SK TN VG
        case (0x50, 0x54), (0x53, 0x54), (0x4C, 0x59): return 25  // PT ST LY
        case (0x49, 0x53), (0x54, 0x52): return 26  // IS TR
        case (0x46, 0x52), (0x47, 0x52), (0x49, 0x54), (0x4D, 0x43), (0x4D, 0x52), (0x53, 0x4D), (0x42, 0x49), (0x44, 0x4A): return 27  // FR GR IT MC MR SM BI DJ
        case (0x41, 0x4C), (0x41, 0x5A), (0x42, 0x59), (0x43, 0x59), (0x44, 0x4F), (0x47, 0x54), (0x48, 0x55), (0x4C, 0x42), (0x50, 0x4C), (0x53, 0x56), (0x4E, 0x49): return 28  // AL AZ BY CY DO GT HU LB PL SV NI
        case (0x42, 0x52), (0x45, 0x47), (0x50, 0x53), (0x51, 0x41), (0x55, 0x41): return 29  // BR EG PS QA UA
        case (0x4A, 0x4F), (0x4B, 0x57), (0x4D, 0x55), (0x59, 0x45): return 30  // JO KW MU YE
        case (0x4D, 0x54), (0x53, 0x43): return 31  // MT SC
        case (0x4C, 0x43): return 32  // LC
        case (0x52, 0x55): return 33  // RU
        default: return 0
        }
    }

    /// A prefix and at least `minimumBody` key bytes after it, taken whole. It fails only on a
    /// short run, so a failure reads a bounded number of bytes.
    static func prefixedToken(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, prefix: StaticString, minimumBody: Int, wildcard: Int = -1) -> Int? {
        guard Self.hasPrefix(bytes, start, prefix, wildcard: wildcard) else { return nil }
        var index = start + prefix.utf8CodeUnitCount
        while index < bytes.count, Self.isWordByte(bytes[index]) || bytes[index] == UInt8(ascii: "-") { index += 1 }
        return index - start - prefix.utf8CodeUnitCount >= minimumBody ? index - start : nil
    }

    /// `AKIA` or `ASIA` and 16 upper-case letters or digits, whatever follows them.
    static func awsKey(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        guard start + 20 <= bytes.count else { return nil }
        guard Self.hasPrefix(bytes, start, "AKIA") || Self.hasPrefix(bytes, start, "ASIA") else { return nil }
        guard bytes[(start + 4)..<(start + 20)].allSatisfy({ Self.isUpper($0) || Self.isDigit($0) }) else { return nil }
        // Whatever follows: a key glued to the next word is still a key.
        return 20
    }

    /// Three base64url segments, the first starting `eyJ` (a JSON header). A failure after 20
    /// bytes or more had too few segments or an empty one, which every later start in the same
    /// run has too: the frontier moves past the run.
    static func jwt(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, frontier: inout Int) -> Int? {
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
        if segments == 3, segmentLength > 0, index - start >= 20 { return index - start }
        if index - start >= 20 { frontier = index }
        return nil
    }

    /// A PEM (or PGP armoured) private key block, whole: five or more dashes, `BEGIN `, a header
    /// line naming a `PRIVATE KEY` (`… PRIVATE KEY BLOCK` too), and everything to the end line
    /// (to the end of the text when it has none).
    static func privateKey(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        var index = start
        while index < bytes.count, index - start < 64, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index - start >= 5, Self.hasPrefix(bytes, index, "BEGIN ") else { return nil }
        // `PRIVATE KEY` within the header line's first 80 bytes.
        index += 6
        var found = false
        while index < min(bytes.count, start + 100), bytes[index] != UInt8(ascii: "\n") {
            if bytes[index] == UInt8(ascii: "P"), Self.hasPrefix(bytes, index, "PRIVATE KEY") {
                found = true
                break
            }
            index += 1
        }
        guard found else { return nil }
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "-"), Self.hasPrefix(bytes, index, "-----END ") {
                var close = index + 9
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

    /// A local part (at most 64 bytes), `@`, and a domain with a dot and a top-level part of two
    /// or more. A failure
    /// without `@` moves the frontier past the local part (every later start in it reaches the
    /// same end); a failed domain moves it to the domain, which is read once more at most.
    static func email(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, frontier: inout Int) -> Int? {
        var index = start
        while index < bytes.count, Self.isWordByte(bytes[index]) || bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index > start, index - start <= 64, index < bytes.count, bytes[index] == UInt8(ascii: "@") else {
            frontier = index
            return nil
        }
        index += 1
        let domainStart = index
        var lastDot = -1
        while index < bytes.count, Self.isWordByte(bytes[index]) || bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: "-") {
            if bytes[index] == UInt8(ascii: ".") { lastDot = index }
            index += 1
        }
        while index > domainStart, bytes[index - 1] == UInt8(ascii: ".") { index -= 1 }
        guard lastDot > domainStart, lastDot < index - 2 else {
            frontier = domainStart
            return nil
        }
        return index - start
    }

    @inline(__always) private static func isPhoneSeparator(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "(") || byte == UInt8(ascii: ")")
    }

    /// 10 to 15 digits in a phone-like layout: optional `+`, groups split by spaces, dashes,
    /// dots or parentheses. A run of more digits is read once: the frontier moves to the first
    /// group from which 15 or fewer remain (the phone a person would see at its end), or past
    /// the run.
    static func phone(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, frontier: inout Int) -> Int? {
        var quick = 0
        var scan = start
        while scan < bytes.count, scan < start + 24, quick < 10 {
            if Self.isDigit(bytes[scan]) { quick += 1 } else if !Self.isPhoneSeparator(bytes[scan]), bytes[scan] != UInt8(ascii: "+") { break }
            scan += 1
        }
        guard quick >= 10 else { return nil }
        // The run: digits, and at most two separators in a row with a digit after them.
        func walk(_ visit: (_ groupStart: Int, _ digitsBefore: Int) -> Bool) -> (digits: Int, end: Int) {
            var index = start
            var digits = 0
            var end = start
            var groupStart = start
            if bytes[index] == UInt8(ascii: "+") { index += 1 }
            while index < bytes.count {
                let byte = bytes[index]
                if Self.isDigit(byte) {
                    if index == groupStart || !Self.isDigit(bytes[index - 1]) {
                        if !visit(groupStart, digits) { return (digits, end) }
                    }
                    digits += 1
                    index += 1
                    end = index
                    continue
                }
                guard Self.isPhoneSeparator(byte) else { break }
                var next = index + 1
                if next < bytes.count, Self.isPhoneSeparator(bytes[next]) { next += 1 }
                guard next < bytes.count, Self.isDigit(bytes[next]) else { break }
                index = next
                groupStart = next
            }
            return (digits, end)
        }
        let (digits, end) = walk { _, _ in true }
        if (10...15).contains(digits) { return end - start }
        frontier = end
        guard digits > 15 else { return nil }
        // The first group start after `start` from which 10 to 15 digits remain.
        _ = walk { groupStart, before in
            guard groupStart > start, digits - before <= 15 else { return true }
            if digits - before >= 10 { frontier = groupStart }
            return false
        }
        return nil
    }

    /// Whether `ascii` is at `start`, compared byte by byte (a slice's `elementsEqual` against a
    /// `String.UTF8View` goes through the generic iterator path, at every candidate).
    /// The byte at offset `wildcard` (if any) is not compared: the caller has checked it.
    static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ ascii: StaticString, wildcard: Int = -1) -> Bool {
        guard start + ascii.utf8CodeUnitCount <= bytes.count else { return false }
        let expected = UnsafeBufferPointer(start: ascii.utf8Start, count: ascii.utf8CodeUnitCount)
        for offset in 0..<expected.count where offset != wildcard && bytes[start + offset] != expected[offset] { return false }
        return true
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
    @inline(__always) static func isUpper(_ byte: UInt8) -> Bool { byte >= 65 && byte <= 90 }
    /// ASCII letters, digits and `_`. Bytes of non-ASCII scalars are boundaries.
    @inline(__always) static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 95
    }
}

/// Cards: 13 to 19 digits, optionally grouped by single spaces or dashes, with at least 13 of
/// them in the first 23 bytes, passing the Luhn check: at each start, the longest Luhn-valid run
/// of at least 13 that ends where a group ends. A run of digit groups holds a start at every
/// group, so the run is read once, as the starts move along it: a ring of the last 32 digits
/// keeps each one's bytes and the Luhn sums of the run up to it, and every start is decided by
/// at most seven subtractions (a window of `L` digits doubles those of the parity opposite its
/// last, so its sum is a difference of one of two prefix sums).
struct CardRun: RunRing {
    static let ring = 32
    static let mask = CardRun.ring - 1
    /// Per digit of the run, by index mod 32, four rings in one array: its first byte, the byte
    /// after it, and the sums of the digits before it doubling the even-indexed or the
    /// odd-indexed ones.
    /// Allocated at the first card candidate of a scan: most prompts have none.
    var state = RunState()

    init() {}

    mutating func match(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Int? {
        if !self.locate(bytes, start) {
            // Thirteen digits need thirteen bytes of digits, spaces and dashes: most numbers
            // (dates, amounts, counts) end before that, read no further, and start no run.
            guard start + 13 <= bytes.count else { return nil }
            for offset in 1..<13 {
                let byte = bytes[start + offset]
                guard SensitiveValueDetector.isDigit(byte) || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "-") else { return nil }
            }
            self.begin(at: start)
        }
        let first = self.state.cursor
        // Up to 19 digits from this start.
        while self.state.count < first + 19, self.read(bytes) {}
        let available = min(19, self.state.count - first)
        guard available >= 13, self.state.storage[Self.ring + (first + 12) & Self.mask] - start <= 23 else { return nil }
        let base = first & Self.mask
        for length in stride(from: available, through: 13, by: -1) {
            let last = (first + length) & Self.mask
            // The window's prefix sum at its end, past a digit of index first + length - 1.
            let sum = (first + length) % 2 == 0
                ? self.state.storage[2 * Self.ring + last] - self.state.storage[2 * Self.ring + base]
                : self.state.storage[3 * Self.ring + last] - self.state.storage[3 * Self.ring + base]
            guard sum % 10 == 0 else { continue }
            let end = self.state.storage[Self.ring + (first + length - 1) & Self.mask]
            if end < bytes.count, SensitiveValueDetector.isDigit(bytes[end]) { return nil }
            return end - start
        }
        return nil
    }

    private mutating func begin(at start: Int) {
        self.restart(at: start)
        if self.state.storage.isEmpty { self.state.storage = [Int](repeating: 0, count: 4 * Self.ring) }
        self.state.storage[2 * Self.ring] = 0
        self.state.storage[3 * Self.ring] = 0
    }

    /// Reads the run's next digit (past one separator); false when the run has ended.
    mutating func read(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !self.state.ended, self.state.next < bytes.count else {
            self.state.ended = true
            return false
        }
        var index = self.state.next
        if !SensitiveValueDetector.isDigit(bytes[index]) {
            let byte = bytes[index]
            guard self.state.count > 0, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "-"), index + 1 < bytes.count, SensitiveValueDetector.isDigit(bytes[index + 1]) else {
                self.state.ended = true
                return false
            }
            index += 1
        }
        let digit = Int(bytes[index] &- 48)
        let doubled = digit < 5 ? digit * 2 : digit * 2 - 9
        let slot = self.state.count & Self.mask
        let following = (self.state.count + 1) & Self.mask
        self.state.storage[slot] = index
        self.state.storage[Self.ring + slot] = index + 1
        self.state.storage[2 * Self.ring + following] = self.state.storage[2 * Self.ring + slot] + (self.state.count % 2 == 0 ? doubled : digit)
        self.state.storage[3 * Self.ring + following] = self.state.storage[3 * Self.ring + slot] + (self.state.count % 2 == 0 ? digit : doubled)
        self.state.count += 1
        self.state.next = index + 1
        return true
    }
}

/// IBANs: a country code, two check digits and the country's number of letters and digits in
/// all (ISO 13616; groups of four may be spaced), passing the mod-97 check (the first four
/// characters moved to the end). The country fixes the length, so an IBAN glued to a following
/// word is found. A run of groups holds a start at every group, so, as with cards, the run is
/// read once: a ring of the last 64 characters keeps each one's bytes, the remainder mod 97 of
/// the run's digit string up to it and that string's length, and how many spaces came after
/// characters of each position mod 4; every start is then decided in constant time (a span's
/// remainder is a difference of two prefix remainders, the earlier scaled by 10^digits).
struct IBANRun: RunRing {
    static let ring = 64
    static let mask = IBANRun.ring - 1
    /// Six rings in one array: first byte, byte after, prefix remainder, prefix digit count, and
    /// spaces after characters of index ≡ 0…3 mod 4 (the four counts packed by 16 bits); then
    /// the powers of ten mod 97.
    var state = RunState()

    init() {}

    /// 10^n mod 97 for n in 0..<72, after the six rings: more than the 68 digits of the longest IBAN.
    private static let powersAt = 6 * IBANRun.ring

    mutating func match(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Int? {
        guard start + 15 <= bytes.count, SensitiveValueDetector.isUpper(bytes[start + 1]), SensitiveValueDetector.isDigit(bytes[start + 2]),
            SensitiveValueDetector.isDigit(bytes[start + 3])
        else { return nil }
        let length = SensitiveValueDetector.ibanLength(bytes[start], bytes[start + 1])
        guard length > 0 else { return nil }
        if !self.locate(bytes, start) { self.begin(at: start) }
        let first = self.state.cursor
        while self.state.count < first + length, self.read(bytes) {}
        guard self.state.count >= first + length else { return nil }
        // Spaces only after every fourth character from the start.
        let last = first + length - 1
        let spaces = self.state.storage[5 * Self.ring + (last & Self.mask)] &- self.state.storage[5 * Self.ring + (first & Self.mask)]
        let allowed = (first + 3) & 3
        for residue in 0..<4 where residue != allowed && (spaces >> (16 * residue)) & 0xFFFF != 0 { return nil }
        let remainder = self.span(first + 4, first + length)
        let headDigits = self.state.storage[4 * Self.ring + ((first + 4) & Self.mask)] - self.state.storage[4 * Self.ring + (first & Self.mask)]
        let check = (remainder * self.state.storage[Self.powersAt + headDigits] + self.span(first, first + 4)) % 97
        guard check == 1 else { return nil }
        return self.state.storage[Self.ring + (last & Self.mask)] - start
    }

    /// The remainder mod 97 of the digit string of characters `from..<to`.
    private func span(_ from: Int, _ to: Int) -> Int {
        let upper = self.state.storage[2 * Self.ring + (to & Self.mask)]
        let lower = self.state.storage[2 * Self.ring + (from & Self.mask)]
        let digits = self.state.storage[4 * Self.ring + (to & Self.mask)] - self.state.storage[4 * Self.ring + (from & Self.mask)]
        return ((upper - lower * self.state.storage[Self.powersAt + digits]) % 97 + 97) % 97
    }

    private mutating func begin(at start: Int) {
        self.restart(at: start)
        if self.state.storage.isEmpty {
            self.state.storage = [Int](repeating: 1, count: Self.powersAt + 72)
            for n in 1..<72 { self.state.storage[Self.powersAt + n] = self.state.storage[Self.powersAt + n - 1] * 10 % 97 }
        }
        self.state.storage[2 * Self.ring] = 0
        self.state.storage[4 * Self.ring] = 0
        self.state.storage[5 * Self.ring] = 0
    }

    /// Reads the run's next character (past one space); false when the run has ended.
    mutating func read(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        @inline(__always) func member(_ byte: UInt8) -> Bool { SensitiveValueDetector.isUpper(byte) || SensitiveValueDetector.isDigit(byte) }
        guard !self.state.ended, self.state.next < bytes.count else {
            self.state.ended = true
            return false
        }
        var index = self.state.next
        let slot = self.state.count & Self.mask
        let following = (self.state.count + 1) & Self.mask
        var spaces = self.state.storage[5 * Self.ring + slot]
        if !member(bytes[index]) {
            guard self.state.count > 0, bytes[index] == UInt8(ascii: " "), index + 1 < bytes.count, member(bytes[index + 1]) else {
                self.state.ended = true
                return false
            }
            // The space follows the previous character: count it under that one's residue. The
            // prefix counts up to this character include it.
            spaces &+= 1 << (16 * ((self.state.count - 1) & 3))
            index += 1
        }
        let byte = bytes[index]
        let value = SensitiveValueDetector.isDigit(byte) ? Int(byte - 48) : Int(byte - 55)
        let digits = value >= 10 ? 2 : 1
        self.state.storage[slot] = index
        self.state.storage[Self.ring + slot] = index + 1
        self.state.storage[5 * Self.ring + slot] = spaces
        self.state.storage[2 * Self.ring + following] = (self.state.storage[2 * Self.ring + slot] * (digits == 2 ? 100 : 10) + value) % 97
        self.state.storage[4 * Self.ring + following] = self.state.storage[4 * Self.ring + slot] + digits
        self.state.storage[5 * Self.ring + following] = spaces
        self.state.count += 1
        self.state.next = index + 1
        return true
    }
}

/// A run read once as the scanner's starts move along it (`CardRun`, `IBANRun`): a ring of the
/// last characters, the first byte of each in the ring's first `ring` slots.
protocol RunRing {
    static var ring: Int { get }
    static var mask: Int { get }
    var state: RunState { get set }
    /// Reads the run's next character; false when the run has ended.
    mutating func read(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool
}

/// Where a run stands: its rings (`storage`), characters read, where reading goes on, whether
/// the run has ended, the character the last start was at, and where the run began.
struct RunState {
    var storage: [Int] = []
    var count = 0
    var next = -1
    var ended = true
    var cursor = 0
    var runStart = -1
}

extension RunRing {
    /// Starts a new run at `start`: nothing read yet.
    mutating func restart(at start: Int) {
        self.state.runStart = start
        self.state.next = start
        self.state.count = 0
        self.state.cursor = 0
        self.state.ended = false
    }

    /// Moves the cursor to the character at `start` if it belongs to the run being read.
    mutating func locate(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Bool {
        guard self.state.runStart >= 0, start > self.state.runStart else { return false }
        while true {
            while self.state.cursor >= self.state.count {
                guard self.read(bytes) else { return false }
            }
            let at = self.state.storage[self.state.cursor & Self.mask]
            if at == start { return true }
            if at > start { return false }
            self.state.cursor += 1
        }
    }
}
