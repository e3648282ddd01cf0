import Glibc

/// Text that looks like key-value data but is not JSON the guard can read whole: truncated or
/// malformed JSON, a Python dict (`{'password': 'x'}`), a log line (`"token": "…"` after some
/// prose). Every quoted key followed by `:` is asked of the key filter; a withheld key keeps its
/// name and loses its value, which becomes `[withheld]`. One pass, each byte read a bounded
/// number of times; keys longer than 200 bytes are not keys.
enum KeyValueScrubber {
    static let withheld: StaticString = "[withheld]"

    /// The text with the values of withheld keys replaced, and how many; nil when none was.
    static func scrub<Filter: JSONKeyFilter>(_ bytes: UnsafeBufferPointer<UInt8>, keeping filter: Filter) -> ([UInt8], Int)? {
        // Most text has no quote, or no colon: two vectorised searches rule it out.
        guard filter.filtersKeys, let base = bytes.baseAddress, memchr(base, Int32(UInt8(ascii: ":")), bytes.count) != nil
            || memchr(base, Int32(UInt8(ascii: "=")), bytes.count) != nil,
            memchr(base, Int32(UInt8(ascii: "\"")), bytes.count) != nil || memchr(base, Int32(UInt8(ascii: "'")), bytes.count) != nil
        else { return nil }
        var output: [UInt8] = []
        var copied = 0
        var omitted = 0
        var index = 0
        while index < bytes.count {
            let quote = bytes[index]
            guard quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else {
                index += 1
                continue
            }
            // The key runs to the next same quote, within 200 bytes.
            var close = index + 1
            while close < bytes.count, close - index <= 200, bytes[close] != quote { close += 1 }
            guard close < bytes.count, bytes[close] == quote else {
                index += 1
                continue
            }
            var colon = close + 1
            while colon < bytes.count, bytes[colon] == UInt8(ascii: " ") { colon += 1 }
            guard colon < bytes.count, bytes[colon] == UInt8(ascii: ":") || bytes[colon] == UInt8(ascii: "=") else {
                // Not a key: the closing quote may open the next one.
                index = close
                continue
            }
            let key = String(decoding: UnsafeBufferPointer(rebasing: bytes[(index + 1)..<close]), as: UTF8.self)
            guard filter.keeping(key) == nil else {
                index = colon + 1
                continue
            }
            // The value: a quoted string (backslash escapes), or up to a delimiter.
            var start = colon + 1
            while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
            var end = start
            if end < bytes.count, bytes[end] == UInt8(ascii: "\"") || bytes[end] == UInt8(ascii: "'") {
                let valueQuote = bytes[end]
                end += 1
                while end < bytes.count, bytes[end] != valueQuote {
                    end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1
                }
                end = min(end + 1, bytes.count)
            } else {
                while end < bytes.count, !",}]\n\r".utf8.contains(bytes[end]) { end += 1 }
            }
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
}
