public import OneoWire
import Glibc

/// Text that looks like key-value data but is not JSON the guard can read whole: truncated or
/// malformed JSON, a Python dict (`{'password': 'x'}`), a log or query string (`token=abc`,
/// `Authorization: Bearer …`, YAML). Every key (quoted, or a bare word of letters, digits, `_`
/// and `-`) followed by `:` or `=` is asked of the key filter; a withheld key keeps its name and
/// loses its value — a quoted string, a bracketed list or object (read to its matching
/// bracket), or text to the next `,` `;` `&` or line end (the next line when the value starts on
/// it, as YAML writes) — which becomes `[withheld]`. One pass: a key, quoted or bare, is looked
/// for at most 200 bytes ahead, and a value is read once.
enum KeyValueScrubber {
    static let withheld: StaticString = "[withheld]"

    /// The text with the values of withheld keys replaced, and how many; nil when none was.
    static func scrub<Filter: JSONKeyFilter>(_ bytes: UnsafeBufferPointer<UInt8>, keeping filter: Filter) -> ([UInt8], Int)? {
        // Most text has no `:` or `=` at all: two vectorised searches rule it out.
        guard filter.filtersKeys, let base = bytes.baseAddress,
            memchr(base, Int32(UInt8(ascii: ":")), bytes.count) != nil || memchr(base, Int32(UInt8(ascii: "=")), bytes.count) != nil
        else { return nil }
        var output: [UInt8] = []
        var copied = 0
        var omitted = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            let key: Range<Int>
            let after: Int
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                // A quoted key runs to the next same quote, within 200 bytes.
                var close = index + 1
                while close < bytes.count, close - index <= 200, bytes[close] != byte { close += 1 }
                guard close < bytes.count, bytes[close] == byte else {
                    index += 1
                    continue
                }
                key = (index + 1)..<close
                after = close + 1
            } else if Self.isKeyByte(byte), index == 0 || !Self.isKeyByte(bytes[index - 1]) {
                var end = index + 1
                while end < bytes.count, end - index <= 200, Self.isKeyByte(bytes[end]) { end += 1 }
                key = index..<end
                after = end
            } else {
                index += 1
                continue
            }
            var colon = after
            while colon < bytes.count, bytes[colon] == UInt8(ascii: " ") { colon += 1 }
            guard colon < bytes.count, bytes[colon] == UInt8(ascii: ":") || bytes[colon] == UInt8(ascii: "="),
                filter.keeping(String(decoding: UnsafeBufferPointer(rebasing: bytes[key]), as: UTF8.self)) == nil
            else {
                // Not a withheld key: what it holds is read on (a quoted value may hold keys).
                index += 1
                continue
            }
            var start = colon + 1
            while start < bytes.count, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { start += 1 }
            // `key:` then the value indented on the next line.
            if start < bytes.count, bytes[start] == UInt8(ascii: "\r") { start += 1 }
            if start < bytes.count, bytes[start] == UInt8(ascii: "\n") {
                start += 1
                while start < bytes.count, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { start += 1 }
            }
            let end = Self.valueEnd(bytes, from: start)
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied..<start]))
            output.append(contentsOf: UnsafeBufferPointer(start: Self.withheld.utf8Start, count: Self.withheld.utf8CodeUnitCount))
            copied = end
            omitted += 1
            index = end
        }
        guard omitted > 0 else { return nil }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied...]))
        return (output, omitted)
    }

    /// Letters, digits, `_` and `-`: what a bare key is made of.
    @inline(__always) private static func isKeyByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }

    /// Where a value that starts at `start` ends: past its closing quote, past its matching
    /// bracket (quotes inside respected), or at the next delimiter.
    private static func valueEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        guard start < bytes.count else { return start }
        var index = start
        var depth = 0
        var quote: UInt8 = 0
        while index < bytes.count {
            let byte = bytes[index]
            if quote != 0 {
                if byte == UInt8(ascii: "\\") { index += 2; continue }
                if byte == quote {
                    quote = 0
                    if depth == 0 { return index + 1 }
                }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                quote = byte
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if depth == 0 { return index }
                depth -= 1
                if depth == 0 { return index + 1 }
            case UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "&"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                if depth == 0 { return index }
            default:
                break
            }
            index += 1
        }
        return min(index, bytes.count)
    }
}
