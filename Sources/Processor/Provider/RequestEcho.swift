/// A provider's error message may quote the request back ("Invalid value for messages[1]:
/// 'Jane Doe, 123 Main St…'"). The job row keeps the message, and any `read` token of the tenant
/// may see it, so whatever the message repeats of what was sent is cut out before it leaves the
/// processor: every run of 12 or more scalars that also occurs in the request becomes `…`.
/// Linear: the request's 12-scalar windows go into a set once, the message is checked against it.
public enum RequestEcho {
    static let window = 12

    public static func strip(_ message: String, sent request: [String]) -> String {
        let text = Array(message.unicodeScalars)
        guard text.count >= Self.window else { return message }
        var windows = Set<[Unicode.Scalar]>()
        for part in request {
            let scalars = Array(part.unicodeScalars)
            guard scalars.count >= Self.window else { continue }
            for start in 0...(scalars.count - Self.window) { windows.insert(Array(scalars[start..<start + Self.window])) }
        }
        guard !windows.isEmpty else { return message }
        var echoed = [Bool](repeating: false, count: text.count)
        for start in 0...(text.count - Self.window) where windows.contains(Array(text[start..<start + Self.window])) {
            for index in start..<start + Self.window { echoed[index] = true }
        }
        guard echoed.contains(true) else { return message }
        var result = String.UnicodeScalarView()
        var index = 0
        while index < text.count {
            if echoed[index] {
                result.append("…")
                while index < text.count, echoed[index] { index += 1 }
            } else {
                result.append(text[index])
                index += 1
            }
        }
        return String(result)
    }
}
