public import OneoWire
/// Names that make a field or nested key sensitive, matched against words as people and
/// integrations write them:
/// - a name is split into words at punctuation and spaces, at case changes (`accessToken` →
///   access token, `customerSSN` → customer ssn, `APIKey` → api key) and between letters and
///   digits (`oauth2Token` → oauth 2 token); boundaries are decided by Unicode scalar class, so
///   `Passwörter` is one word and a non-breaking space or `：` splits; invisible format scalars
///   (a zero-width space, a soft hyphen) are dropped, not taken as boundaries;
/// - a sensitive name matches as a run of whole words (`api key` in `stripe_api_key`), and a word
///   matches when it ends with a sensitive name written as one word (`customerssn`,
///   `stripeapikey`, `CARDNUMBER`); `secretary` and `tokens` do not match `secret` and `token`.
/// Every slug, label and nested key of every record is asked, so ASCII names (nearly all of
/// them) are matched over their bytes, folding case as they are read, without allocating.
/// A class: the key filter that carries it is copied per nested key written.
final class SensitiveNames: Sendable {
    /// Every distinct word and one-word form of the sensitive names, lower-cased, as one byte
    /// buffer: entry `i` is `vocabulary[starts[i]..<starts[i + 1]]`.
    private let vocabulary: [UInt8]
    private let starts: [Int]
    /// Open addressing over the entries' FNV-1a hashes (linear probing, at most a quarter full).
    /// Fixed when the names are, so a name from tenant data probes a bounded number of slots.
    private let slots: [Int32]
    /// Per lower-cased first byte, bit `n` set when an entry of `n` bytes (up to 63) starts with it.
    private let lengthsByFirstByte: [UInt64]
    /// Per last byte, bit `n` set when a one-word name of `n` bytes ends with it: the suffixes a
    /// word is looked up by.
    private let suffixLengthsByLastByte: [UInt64]
    /// Per entry: a sensitive name written as one word (`ssn`, `apikey`); the last word of a
    /// multi-word name.
    private let oneWord: [Bool]
    private let endsSequence: [Bool]
    /// Multi-word names as entry indexes, flat: name `s` is `sequenceWords[sequenceStarts[s]..<sequenceStarts[s + 1]]`.
    private let sequenceWords: [Int]
    private let sequenceStarts: [Int]
    /// The most words of one sensitive name.
    private let longest: Int

    /// A one-word name shorter than this matches only a whole word, never the end of one.
    private static let shortestSuffix = 3

    init(_ names: [String]) {
        let split = names.map { Self.words(of: $0) }.filter { !$0.isEmpty }
        var entries = Set<String>()
        for words in split {
            entries.formUnion(words)
            entries.insert(words.joined())
        }
        let sorted = entries.sorted()
        var index: [String: Int] = [:]
        var vocabulary: [UInt8] = []
        var starts: [Int] = []
        var slots = [Int32](repeating: -1, count: max(64, 1 << (Int.bitWidth - (4 * sorted.count).leadingZeroBitCount)))
        var lengthsByFirstByte = [UInt64](repeating: 0, count: 256)
        for (id, entry) in sorted.enumerated() {
            if let first = entry.utf8.first { lengthsByFirstByte[Int(first)] |= 1 << UInt64(min(entry.utf8.count, 63)) }
            index[entry] = id
            starts.append(vocabulary.count)
            vocabulary.append(contentsOf: entry.utf8)
            var slot = Int(Self.hash(entry.utf8)) & (slots.count - 1)
            while slots[slot] >= 0 { slot = (slot + 1) & (slots.count - 1) }
            slots[slot] = Int32(id)
        }
        starts.append(vocabulary.count)
        var oneWord = [Bool](repeating: false, count: sorted.count)
        var endsSequence = [Bool](repeating: false, count: sorted.count)
        var suffixLengths = [UInt64](repeating: 0, count: 256)
        var sequenceWords: [Int] = []
        var sequenceStarts: [Int] = [0]
        for words in split {
            let joined = words.joined()
            oneWord[index[joined]!] = true
            if let last = joined.utf8.last { suffixLengths[Int(last)] |= 1 << UInt64(min(joined.utf8.count, 63)) }
            if words.count > 1 {
                sequenceWords.append(contentsOf: words.map { index[$0]! })
                sequenceStarts.append(sequenceWords.count)
                endsSequence[index[words[words.count - 1]]!] = true
            }
        }
        self.vocabulary = vocabulary
        self.starts = starts
        self.slots = slots
        self.lengthsByFirstByte = lengthsByFirstByte
        self.suffixLengthsByLastByte = suffixLengths
        self.oneWord = oneWord
        self.endsSequence = endsSequence
        self.sequenceWords = sequenceWords
        self.sequenceStarts = sequenceStarts
        self.longest = split.map(\.count).max() ?? 0
    }

    /// Whether a sensitive name occurs in `name`.
    func occurs(in name: String) -> Bool {
        guard !self.oneWord.isEmpty else { return false }
        if let verdict = name.utf8.withContiguousStorageIfAvailable({ self.occurs(inASCII: $0) }), let verdict {
            return verdict
        }
        // Not ASCII (or not contiguous): split by scalar class, then the same matching.
        return self.withMatcher { matcher in
            for word in Self.words(of: name) {
                var bytes = Array(word.utf8)
                if bytes.withUnsafeMutableBufferPointer({ matcher.next(UnsafeBufferPointer($0)) }) { return true }
            }
            return false
        }
    }

    /// The byte matcher; nil when the name is not ASCII.
    private func occurs(inASCII name: UnsafeBufferPointer<UInt8>) -> Bool? {
        for byte in name where byte >= 0x80 { return nil }
        return self.withMatcher { matcher in
            var found = false
            Self.splitASCII(name) { range in
                found = matcher.next(UnsafeBufferPointer(rebasing: name[range]))
                return !found
            }
            return found
        }
    }

    /// A matcher over a ring of the last words on the stack: asked for every nested key written,
    /// so nothing is allocated.
    private func withMatcher<Result>(_ body: (inout Matcher) -> Result) -> Result {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: max(self.longest, 1)) { recent in
            var matcher = Matcher(names: self, recent: recent)
            return body(&matcher)
        }
    }

    /// Words in order, each checked on its own and as the end of a multi-word name; remembers the
    /// last `longest` words' entries.
    private struct Matcher {
        let names: SensitiveNames
        let recent: UnsafeMutableBufferPointer<Int>
        var seen = 0

        init(names: SensitiveNames, recent: UnsafeMutableBufferPointer<Int>) {
            self.names = names
            self.recent = recent
        }

        /// Whether the name matches by the word just read (compared case-folded).
        mutating func next(_ word: UnsafeBufferPointer<UInt8>) -> Bool {
            guard !word.isEmpty else { return false }
            let id = self.names.entry(word, from: 0)
            self.recent[self.seen % self.recent.count] = id
            self.seen += 1
            if id >= 0, self.names.oneWord[id] { return true }
            if id >= 0, self.names.endsSequence[id], self.names.sequenceEnds(with: id, recent: self.recent, seen: self.seen) { return true }
            if self.names.endsWithOneWordName(word) { return true }
            return self.names.isPlural(word, recent: self.recent, seen: self.seen)
        }
    }

    /// Whether the word is the plural (`-s`, `-es`) of a word that is or ends with a sensitive
    /// name written as one word: `passwords`, `apikeys`, `secrets`. `tokens` is not: token counts
    /// are usage figures, not secrets.
    /// A plural also ends a multi-word name (`api_keys`, `accountNumbers`).
    private func isPlural(_ word: UnsafeBufferPointer<UInt8>, recent: UnsafeMutableBufferPointer<Int>, seen: Int) -> Bool {
        guard word.count >= 4, Self.lowered(word[word.count - 1]) == UInt8(ascii: "s") else { return false }
        let alone = !(word.count == 6 && (0..<6).allSatisfy({ Self.lowered(word[$0]) == Self.tokens[$0] }))
        for cut in [1, 2] where word.count - cut >= 3 {
            if cut == 2, Self.lowered(word[word.count - 2]) != UInt8(ascii: "e") { continue }
            let stem = UnsafeBufferPointer(rebasing: word[0..<(word.count - cut)])
            let id = self.entry(stem, from: 0)
            if alone, id >= 0, self.oneWord[id] { return true }
            if id >= 0, self.endsSequence[id], self.sequenceEnds(with: id, recent: recent, seen: seen) { return true }
            if alone, self.endsWithOneWordName(stem) { return true }
        }
        return false
    }

    private static let tokens: [UInt8] = Array("tokens".utf8)

    /// Whether the word ends with a sensitive name written as one word (at least three bytes).
    private func endsWithOneWordName(_ word: UnsafeBufferPointer<UInt8>) -> Bool {
        var lengths = self.suffixLengthsByLastByte[Int(Self.lowered(word[word.count - 1]))]
        while lengths != 0 {
            let length = lengths.trailingZeroBitCount
            lengths &= lengths - 1
            guard length >= Self.shortestSuffix, length < word.count else { continue }
            let id = self.entry(word, from: word.count - length)
            if id >= 0, self.oneWord[id] { return true }
        }
        return false
    }

    /// Whether a multi-word name ends with the word just seen, its earlier words before it.
    private func sequenceEnds(with id: Int, recent: UnsafeMutableBufferPointer<Int>, seen: Int) -> Bool {
        sequences: for sequence in 0..<(self.sequenceStarts.count - 1) {
            let first = self.sequenceStarts[sequence]
            let last = self.sequenceStarts[sequence + 1] - 1
            guard self.sequenceWords[last] == id, last - first < seen else { continue }
            for back in 1...(last - first) where recent[(seen - 1 - back) % recent.count] != self.sequenceWords[last - back] { continue sequences }
            return true
        }
        return false
    }

    /// The entry of `word[from...]` (compared case-folded), or -1.
    private func entry(_ word: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
        let count = word.count - from
        guard self.lengthsByFirstByte[Int(Self.lowered(word[from]))] & (1 << UInt64(min(count, 63))) != 0 else { return -1 }
        var hash = Self.fnvOffset
        for offset in from..<word.count { hash = (hash ^ UInt32(Self.lowered(word[offset]))) &* Self.fnvPrime }
        var slot = Int(hash) & (self.slots.count - 1)
        while true {
            let id = Int(self.slots[slot])
            guard id >= 0 else { return -1 }
            let start = self.starts[id]
            if self.starts[id + 1] - start == count {
                var equal = true
                for offset in 0..<count where Self.lowered(word[from + offset]) != self.vocabulary[start + offset] {
                    equal = false
                    break
                }
                if equal { return id }
            }
            slot = (slot + 1) & (self.slots.count - 1)
        }
    }

    private static let fnvOffset: UInt32 = 2_166_136_261
    private static let fnvPrime: UInt32 = 16_777_619

    private static func hash(_ bytes: some Sequence<UInt8>) -> UInt32 {
        bytes.reduce(Self.fnvOffset) { ($0 ^ UInt32($1)) &* Self.fnvPrime }
    }

    // MARK: Words

    /// What a scalar is to the word split.
    enum ScalarClass: Equatable {
        case lower, upper, uncased, digit, boundary, invisible
    }

    /// The split of ASCII bytes: ranges of words, handed over until `body` returns false.
    static func splitASCII(_ name: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Bool) {
        @inline(__always) func kind(_ byte: UInt8) -> ScalarClass {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return .lower
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return .upper
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return .digit
            default: return .boundary
            }
        }
        var start = -1
        var index = 0
        while index <= name.count {
            let current: ScalarClass = index < name.count ? kind(name[index]) : .boundary
            if start >= 0 {
                switch Self.boundary(before: current, previous: kind(name[index - 1]), beforePrevious: index - start >= 2 ? kind(name[index - 2]) : nil) {
                case .none: break
                case .here:
                    guard body(start..<index) else { return }
                    start = -1
                case .beforePrevious:
                    guard body(start..<(index - 1)) else { return }
                    start = index - 1
                }
            }
            if start < 0, current != .boundary { start = index }
            index += 1
        }
    }

    enum Split { case none, here, beforePrevious }

    /// Where a word ends, given the classes of the current scalar and the one or two before it
    /// in the same word: at a boundary; lower or digit → upper (`accessToken`); between letters
    /// and digits; and before the last of a run of capitals followed by a lower-case letter
    /// (`APIKey` → API, Key).
    static func boundary(before current: ScalarClass, previous: ScalarClass, beforePrevious: ScalarClass?) -> Split {
        switch (previous, current) {
        case (_, .boundary): return .here
        // Cased and uncased scripts side by side (`SSN番号`): two words.
        case (.lower, .uncased), (.upper, .uncased), (.uncased, .lower), (.uncased, .upper): return .here
        case (.lower, .upper), (.digit, .upper), (.digit, .lower), (.digit, .uncased), (.lower, .digit), (.upper, .digit), (.uncased, .digit): return .here
        case (.upper, .lower) where beforePrevious == .upper: return .beforePrevious
        default: return .none
        }
    }

    /// `Stripe API-Key` → ["stripe", "api", "key"], for any name: the same split by Unicode
    /// scalar class, lower-cased.
    static func words(of name: String) -> [String] {
        var classified: [(Unicode.Scalar, ScalarClass)] = []
        // Full-width forms fold first (`ｐａｓｓｗｏｒｄ` is `password`), scalar by scalar: a
        // library normalisation sorts runs of combining marks, quadratic in a hostile key.
        for original in name.unicodeScalars {
            let scalar = (0xFF01...0xFF5E).contains(original.value) ? Unicode.Scalar(original.value - 0xFEE0)! : original
            let properties = scalar.properties
            let kind: ScalarClass
            if properties.generalCategory == .format || properties.isDefaultIgnorableCodePoint {
                kind = .invisible
            } else if properties.numericType != nil, !properties.isAlphabetic {
                kind = .digit
            } else if properties.isAlphabetic {
                kind = properties.isUppercase ? .upper : (properties.isLowercase ? .lower : .uncased)
            } else if properties.generalCategory == .nonspacingMark || properties.generalCategory == .spacingMark || properties.generalCategory == .enclosingMark {
                // A combining accent belongs to the letter before it.
                kind = .invisible
            } else {
                kind = .boundary
            }
            if kind != .invisible { classified.append((scalar, kind)) }
        }
        var words: [String] = []
        var current = String.UnicodeScalarView()
        var start = -1
        for index in 0...classified.count {
            let kind = index < classified.count ? classified[index].1 : .boundary
            if start >= 0 {
                switch Self.boundary(before: kind, previous: classified[index - 1].1, beforePrevious: index - start >= 2 ? classified[index - 2].1 : nil) {
                case .none: break
                case .here:
                    words.append(String(current).lowercased())
                    current = String.UnicodeScalarView()
                    start = -1
                case .beforePrevious:
                    let last = current.removeLast()
                    words.append(String(current).lowercased())
                    current = String.UnicodeScalarView([last])
                    start = index - 1
                }
            }
            if kind != .boundary {
                if start < 0 { start = index }
                current.append(classified[index].0)
            }
        }
        return words
    }

    @inline(__always) private static func lowered(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }
}
