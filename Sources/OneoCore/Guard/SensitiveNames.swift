/// Names that make a field or nested key sensitive when they occur as whole words of it:
/// `customer_ssn` and `Stripe API-Key` match `ssn` and `api_key`, `secretary` does not match
/// `secret`. Every slug, label and nested key of every record is asked, so ASCII names (nearly
/// all of them) are matched over their bytes, folding case as they are read, without allocating,
/// hashing or remembering anything; other names are split into Unicode words. A class: the key
/// filter that carries it is copied per nested key written, and one reference is cheaper to copy
/// than its arrays.
final class SensitiveNames: Sendable {
    /// Every distinct word of the sensitive names, lower-cased, as one byte buffer: word `i` is
    /// `vocabulary[wordStarts[i]..<wordStarts[i + 1]]`. Flat arrays, so that matching reads
    /// bytes and integers rather than copying inner arrays.
    private let vocabulary: [UInt8]
    private let wordStarts: [Int]
    /// Open addressing over the words' FNV-1a hashes (linear probing, at most a quarter full):
    /// an ordinary word lands on an empty slot in one probe. The table is fixed when the names
    /// are, so a name from tenant data can make it probe at most `slots.count` times.
    private let slots: [Int32]
    /// Per lower-cased first byte (ASCII), bit `n` set when a word of `n` bytes (up to 63) starts
    /// with it: most words of a name are rejected by this, before hashing.
    private let lengthsByFirstByte: [UInt64]
    /// Per word: a sensitive name by itself; the last word of a multi-word name.
    private let single: [Bool]
    private let endsSequence: [Bool]
    /// Multi-word names as word indexes, flat: name `s` is `sequenceWords[sequenceStarts[s]..<sequenceStarts[s + 1]]`.
    private let sequenceWords: [Int]
    private let sequenceStarts: [Int]
    /// The most words of one sensitive name.
    private let longest: Int
    /// The same names as word lists, for names that are not ASCII.
    private let unicodeNames: [[Substring]]
    private let vocabularyIsASCII: Bool

    init(_ names: [String]) {
        let split = names.map(Self.unicodeWords).filter { !$0.isEmpty }
        let words = Set(split.joined()).sorted()
        var index: [Substring: Int] = [:]
        var vocabulary: [UInt8] = []
        var wordStarts: [Int] = []
        var slots = [Int32](repeating: -1, count: max(64, 1 << (Int.bitWidth - (4 * words.count).leadingZeroBitCount)))
        var lengthsByFirstByte = [UInt64](repeating: 0, count: 128)
        for (id, word) in words.enumerated() {
            if let first = word.utf8.first, first < 0x80 { lengthsByFirstByte[Int(first)] |= 1 << UInt64(min(word.utf8.count, 63)) }
            index[word] = id
            wordStarts.append(vocabulary.count)
            vocabulary.append(contentsOf: word.utf8)
            var slot = Int(Self.hash(word.utf8)) & (slots.count - 1)
            while slots[slot] >= 0 { slot = (slot + 1) & (slots.count - 1) }
            slots[slot] = Int32(id)
        }
        wordStarts.append(vocabulary.count)
        var single = [Bool](repeating: false, count: words.count)
        var endsSequence = [Bool](repeating: false, count: words.count)
        var sequenceWords: [Int] = []
        var sequenceStarts: [Int] = [0]
        for name in split {
            if name.count == 1 {
                single[index[name[0]]!] = true
            } else {
                sequenceWords.append(contentsOf: name.map { index[$0]! })
                sequenceStarts.append(sequenceWords.count)
                endsSequence[index[name[name.count - 1]]!] = true
            }
        }
        self.vocabulary = vocabulary
        self.wordStarts = wordStarts
        self.slots = slots
        self.lengthsByFirstByte = lengthsByFirstByte
        self.single = single
        self.endsSequence = endsSequence
        self.sequenceWords = sequenceWords
        self.sequenceStarts = sequenceStarts
        self.longest = split.map(\.count).max() ?? 0
        self.unicodeNames = split
        self.vocabularyIsASCII = vocabulary.allSatisfy { $0 < 0x80 }
    }

    /// Whether a sensitive name occurs in `name` as a run of whole words.
    func occurs(in name: String) -> Bool {
        guard !self.single.isEmpty else { return false }
        if self.vocabularyIsASCII, let verdict = name.utf8.withContiguousStorageIfAvailable({ self.occurs(inASCII: $0) }), let verdict {
            return verdict
        }
        return self.occurs(inWords: Self.unicodeWords(name))
    }

    /// The byte matcher; nil when the name is not ASCII.
    private func occurs(inASCII name: UnsafeBufferPointer<UInt8>) -> Bool? {
        // The last `longest` words' indexes (-1: not a sensitive word), as a ring.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: max(self.longest, 1)) { recent in
            var seen = 0
            var start = -1
            for position in 0...name.count {
                let byte = position < name.count ? name[position] : 0
                guard byte < 0x80 else { return nil }
                if Self.isWordByte(byte) {
                    if start < 0 { start = position }
                    continue
                }
                guard start >= 0 else { continue }
                let id = self.wordIndex(of: UnsafeBufferPointer(rebasing: name[start..<position]))
                start = -1
                recent[seen % recent.count] = id
                seen += 1
                guard id >= 0 else { continue }
                if self.single[id] { return true }
                if self.endsSequence[id], self.sequenceEnds(with: id, recent: recent, seen: seen) { return true }
            }
            return false
        }
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

    /// The vocabulary index of a word (compared case-folded), or -1.
    private func wordIndex(of word: UnsafeBufferPointer<UInt8>) -> Int {
        guard self.lengthsByFirstByte[Int(Self.lowered(word[0]))] & (1 << UInt64(min(word.count, 63))) != 0 else { return -1 }
        var slot = Int(Self.hash(word.lazy.map(Self.lowered))) & (self.slots.count - 1)
        while true {
            let id = Int(self.slots[slot])
            guard id >= 0 else { return -1 }
            let start = self.wordStarts[id]
            if self.wordStarts[id + 1] - start == word.count {
                var equal = true
                for offset in 0..<word.count where Self.lowered(word[offset]) != self.vocabulary[start + offset] {
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

    private func occurs(inWords words: [Substring]) -> Bool {
        self.unicodeNames.contains { sensitive in
            sensitive.count <= words.count && (0...(words.count - sensitive.count)).contains { start in
                words[start..<(start + sensitive.count)].elementsEqual(sensitive)
            }
        }
    }

    /// `Stripe API-Key` → ["stripe", "api", "key"]: lower-cased runs of letters and digits.
    static func unicodeWords(_ name: String) -> [Substring] {
        name.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) })
    }

    @inline(__always) private static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }

    @inline(__always) private static func lowered(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }
}
