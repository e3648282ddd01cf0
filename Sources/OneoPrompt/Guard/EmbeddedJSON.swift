public import OneoWire
/// JSON held in a string value (an integration's `"{\"password\": …}"`), filtered by key like any
/// nested object: the text is read once, as it streams, and written again without the keys the
/// filter withholds (compact, keys in their own order, which the same text always repeats). No
/// tree is built and no key is sorted, so the cost is linear in the string, and nesting is
/// bounded. A string inside it that holds JSON again is filtered the same way, a few levels deep.
enum EmbeddedJSON {
    /// Nesting of containers in one text.
    static let maximumDepth = 128
    /// Strings in strings in strings.
    static let maximumEmbedding = 3

    /// The text less its withheld keys; nil when it is no JSON object or list, or when nothing
    /// was withheld (then the string is written as it is).
    static func filtered<Filter: JSONKeyFilter>(_ value: String, keeping filter: Filter, omitted: inout Int, embedding: Int = 0) -> [UInt8]? {
        var value = value
        return value.withUTF8 { Self.filtered($0, keeping: filter, omitted: &omitted, embedding: embedding) }
    }

    static func filtered<Filter: JSONKeyFilter>(_ bytes: UnsafeBufferPointer<UInt8>, keeping filter: Filter, omitted: inout Int, embedding: Int = 0) -> [UInt8]? {
        guard filter.filtersKeys, embedding < Self.maximumEmbedding else { return nil }
        var start = 0
        while start < bytes.count, Self.isSpace(bytes[start]) { start += 1 }
        guard start < bytes.count, bytes[start] == UInt8(ascii: "{") || bytes[start] == UInt8(ascii: "[") else { return nil }
        var rewriter = Rewriter(bytes: bytes, index: start, embedding: embedding)
        guard (try? rewriter.value(filter, depth: 0, emit: true)) != nil else { return nil }
        rewriter.skipSpace()
        guard rewriter.index == bytes.count, rewriter.omitted > 0 else { return nil }
        omitted += rewriter.omitted
        return rewriter.out
    }

    @inline(__always) static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

    private struct Invalid: Error {}

    private struct Rewriter {
        let bytes: UnsafeBufferPointer<UInt8>
        var index: Int
        let embedding: Int
        var out: [UInt8] = []
        var omitted = 0

        init(bytes: UnsafeBufferPointer<UInt8>, index: Int, embedding: Int) {
            self.bytes = bytes
            self.index = index
            self.embedding = embedding
            self.out.reserveCapacity(bytes.count)
        }

        mutating func skipSpace() {
            while self.index < self.bytes.count, EmbeddedJSON.isSpace(self.bytes[self.index]) { self.index += 1 }
        }

        mutating func expect(_ byte: UInt8) throws(Invalid) {
            self.skipSpace()
            guard self.index < self.bytes.count, self.bytes[self.index] == byte else { throw Invalid() }
            self.index += 1
        }

        mutating func next(is byte: UInt8) -> Bool {
            self.skipSpace()
            guard self.index < self.bytes.count, self.bytes[self.index] == byte else { return false }
            self.index += 1
            return true
        }

        /// Reads one value; writes it when `emit`, leaving out what `filter` withholds.
        mutating func value<Filter: JSONKeyFilter>(_ filter: Filter, depth: Int, emit: Bool) throws(Invalid) {
            self.skipSpace()
            guard self.index < self.bytes.count else { throw Invalid() }
            switch self.bytes[self.index] {
            case UInt8(ascii: "{"):
                guard depth < EmbeddedJSON.maximumDepth else { throw Invalid() }
                self.index += 1
                if emit { self.out.append(UInt8(ascii: "{")) }
                var first = true
                if !self.next(is: UInt8(ascii: "}")) {
                    repeat {
                        self.skipSpace()
                        let keyStart = self.index
                        let key = try self.string(decode: true)
                        let keyEnd = self.index
                        try self.expect(UInt8(ascii: ":"))
                        if let inner = filter.keeping(key) {
                            if emit {
                                if !first { self.out.append(UInt8(ascii: ",")) }
                                first = false
                                self.out.append(contentsOf: UnsafeBufferPointer(rebasing: self.bytes[keyStart..<keyEnd]))
                                self.out.append(UInt8(ascii: ":"))
                            }
                            try self.value(inner, depth: depth + 1, emit: emit)
                        } else {
                            if emit { self.omitted += 1 }
                            try self.value(filter, depth: depth + 1, emit: false)
                        }
                    } while self.next(is: UInt8(ascii: ","))
                    try self.expect(UInt8(ascii: "}"))
                }
                if emit { self.out.append(UInt8(ascii: "}")) }
            case UInt8(ascii: "["):
                guard depth < EmbeddedJSON.maximumDepth else { throw Invalid() }
                self.index += 1
                if emit { self.out.append(UInt8(ascii: "[")) }
                if !self.next(is: UInt8(ascii: "]")) {
                    var first = true
                    repeat {
                        if emit, !first { self.out.append(UInt8(ascii: ",")) }
                        first = false
                        try self.value(filter, depth: depth + 1, emit: emit)
                    } while self.next(is: UInt8(ascii: ","))
                    try self.expect(UInt8(ascii: "]"))
                }
                if emit { self.out.append(UInt8(ascii: "]")) }
            case UInt8(ascii: "\""):
                let start = self.index
                let holdsJSON = emit && self.index + 1 < self.bytes.count
                    && (self.bytes[self.index + 1] == UInt8(ascii: "{") || self.bytes[self.index + 1] == UInt8(ascii: "["))
                let decoded = try self.string(decode: holdsJSON)
                guard emit else { return }
                var inner = 0
                if holdsJSON, let filtered = EmbeddedJSON.filtered(decoded, keeping: filter, omitted: &inner, embedding: self.embedding + 1) {
                    self.omitted += inner
                    var literal: [UInt8] = []
                    JSONValue.string(String(decoding: filtered, as: UTF8.self)).writeJSON(to: &literal)
                    self.out.append(contentsOf: literal)
                } else {
                    self.out.append(contentsOf: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]))
                }
            default:
                let start = self.index
                try self.scalar()
                if emit { self.out.append(contentsOf: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index])) }
            }
        }

        /// `true`, `false`, `null` or a number, validated.
        mutating func scalar() throws(Invalid) {
            for word: StaticString in ["true", "false", "null"] where self.bytes[self.index] == word.utf8Start[0] {
                let count = word.utf8CodeUnitCount
                guard self.index + count <= self.bytes.count else { throw Invalid() }
                for offset in 0..<count where self.bytes[self.index + offset] != word.utf8Start[offset] { throw Invalid() }
                self.index += count
                return
            }
            func digits() -> Int {
                let from = self.index
                while self.index < self.bytes.count, self.bytes[self.index] >= 48, self.bytes[self.index] <= 57 { self.index += 1 }
                return self.index - from
            }
            if self.bytes[self.index] == UInt8(ascii: "-") { self.index += 1 }
            guard digits() > 0 else { throw Invalid() }
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ".") {
                self.index += 1
                guard digits() > 0 else { throw Invalid() }
            }
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "e") || self.bytes[self.index] == UInt8(ascii: "E") {
                self.index += 1
                if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "+") || self.bytes[self.index] == UInt8(ascii: "-") { self.index += 1 }
                guard digits() > 0 else { throw Invalid() }
            }
        }

        /// A string literal at `index`, validated; its text when `decode` (else empty).
        mutating func string(decode: Bool) throws(Invalid) -> String {
            guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\"") else { throw Invalid() }
            self.index += 1
            let start = self.index
            var escaped = false
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                if byte == UInt8(ascii: "\"") {
                    let end = self.index
                    self.index += 1
                    guard decode else { return "" }
                    let literal = UnsafeBufferPointer(rebasing: self.bytes[(start - 1)..<self.index])
                    if !escaped { return String(decoding: UnsafeBufferPointer(rebasing: self.bytes[start..<end]), as: UTF8.self) }
                    // Rare: a key or value with escapes is read by the one JSON parser.
                    guard let value = try? JSONParser.parse(literal), case .string(let text) = value else { throw Invalid() }
                    return text
                }
                guard byte >= 0x20 else { throw Invalid() }
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    self.index += 1
                    guard self.index < self.bytes.count else { throw Invalid() }
                }
                self.index += 1
            }
            throw Invalid()
        }
    }
}
