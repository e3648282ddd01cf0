/// Text from outside (a provider, a processor, a stored message) made safe to keep, log or print:
/// no control or format characters (no escape sequence for a terminal, no U+202E turning the text
/// around, no zero-width tricks), at most `limit` Unicode scalars.
public enum PlainText {
    public static func bounded(_ text: String, _ limit: Int) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.lazy.filter {
            $0.properties.generalCategory != .control && $0.properties.generalCategory != .format
        }.prefix(limit)))
    }
}
