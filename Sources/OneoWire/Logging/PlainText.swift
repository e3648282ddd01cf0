/// Text from outside (a provider, a processor, a stored message) made safe to keep, log or print:
/// no control or format characters (no escape sequence for a terminal, no U+202E turning the text
/// around, no zero-width tricks), at most `limit` Unicode scalars.
public enum PlainText {
    public static func bounded(_ text: String, _ limit: Int) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.lazy.filter {
            $0.properties.generalCategory != .control && $0.properties.generalCategory != .format
        }.prefix(limit)))
    }

    /// The same, cut at whole scalars to at most `bytes` bytes of UTF-8 (a stored limit in bytes).
    public static func bounded(_ text: String, bytes limit: Int) -> String {
        var kept = String.UnicodeScalarView()
        var used = 0
        for scalar in text.unicodeScalars where scalar.properties.generalCategory != .control && scalar.properties.generalCategory != .format {
            let size = String(scalar).utf8.count
            guard used + size <= limit else { break }
            used += size
            kept.append(scalar)
        }
        return String(kept)
    }
}
