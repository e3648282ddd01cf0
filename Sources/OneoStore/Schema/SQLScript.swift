public import OneoWire
import Foundation

/// Splits a migration file into single statements: PostgresNIO sends every query as a prepared
/// statement, which holds one command. Semicolons inside quotes, dollar quotes and comments do
/// not split.
public enum SQLScript {
    public static func statements(_ script: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var chars = Array(script)[...]
        var dollarTag: String?
        var inString = false
        while let char = chars.popFirst() {
            if let tag = dollarTag {
                current.append(char)
                if char == "$", current.hasSuffix(tag) { dollarTag = nil }
                continue
            }
            if inString {
                current.append(char)
                if char == "'" { inString = false }
                continue
            }
            switch char {
            case "-" where chars.first == "-":
                while let next = chars.first, next != "\n" { chars.removeFirst() }
            case "'":
                inString = true
                current.append(char)
            case "$":
                let rest = chars.prefix(while: { $0 != "$" && ($0.isLetter || $0.isNumber || $0 == "_") })
                if chars.dropFirst(rest.count).first == "$" {
                    let tag = "$" + String(rest) + "$"
                    current += tag
                    chars = chars.dropFirst(rest.count + 1)
                    dollarTag = tag
                } else {
                    current.append(char)
                }
            case ";":
                let statement = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !statement.isEmpty { statements.append(statement) }
                current = ""
            default:
                current.append(char)
            }
        }
        let tail = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !tail.isEmpty { statements.append(tail) }
        return statements
    }
}
