import Foundation
import OneoWire

/// `file_search {query, max_results?}`: the tenant's uploaded documents, best passages first.
/// Documents arrive as the tenant uploaded them; the first search after an upload splits them
/// into passages here, in the jail (HTML is reduced to its text), and stores the passages through
/// the database's file functions. Every statement carries the call's grant, so the database
/// itself keeps this executor to the calling tenant's files.
struct FileSearch {
    let socketDirectory: String
    let database: String
    let user: String

    static let queryBytes = 512
    static let passageBytes = 800


    func run(arguments: JSONValue, access: FileAccess?) throws -> JSONValue {
        guard let access else { throw ToolFailure(message: "no file grant came with this call") }
        guard case .string(let query)? = arguments["query"], !query.isEmpty else {
            throw ToolFailure(message: "file_search takes {\"query\": \"…\", \"max_results\": 1-\(ToolCatalog.maximumResults)}")
        }
        guard query.utf8.count <= Self.queryBytes else { throw ToolFailure(message: "the query is over \(Self.queryBytes) bytes") }
        let wanted = ToolCatalog.resultCount(arguments["max_results"])
        // One connection for the one call this jail serves.
        let connection = try PostgresConnection(socketDirectory: self.socketDirectory, database: self.database, user: self.user, password: access.password)
        // New uploads first: split into passages, a few files a call.
        for row in try connection.query("SELECT id, media_type, content FROM oneo_file_pending($1)", [access.grant]) {
            guard let id = row[0], let type = row[1], let content = row[2] else { continue }
            let passages = Self.passages(of: type == "text/html" ? DocumentText.fromHTML(content) : content)
            // The passages travel as one JSON array, bound like every other value.
            let array = String(decoding: try JSONEncoder().encode(passages), as: UTF8.self)
            _ = try connection.query(
                "SELECT oneo_file_store($1, $2::bigint, ARRAY(SELECT jsonb_array_elements_text($3::jsonb)), $4)",
                [access.grant, id, array, passages.isEmpty ? "no text found" : nil]
            )
        }
        let rows = try connection.query("SELECT file_name, body, rank FROM oneo_file_search($1, $2, $3::integer)", [access.grant, query, String(wanted)])
        return [
            "query": .string(query),
            "results": .array(rows.map { row in
                ["file": .string(PlainText.bounded(row[0] ?? "", bytes: 200)), "passage": .string(row[1] ?? ""), "rank": .double(Double(row[2] ?? "") ?? 0)]
            }),
        ]
    }

    /// Paragraphs packed into passages of at most `passageBytes` (a longer paragraph is cut on
    /// word boundaries), at most 2,000 passages.
    static func passages(of text: String) -> [String] {
        var passages: [String] = []
        var current = ""
        func flush() {
            let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
            if !trimmed.isEmpty { passages.append(trimmed) }
            current = ""
        }
        let paragraphs = text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n")
        for paragraph in paragraphs {
            let words = paragraph.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
            for word in words {
                let piece = String(word.prefix(Self.passageBytes / 2))
                if current.utf8.count + piece.utf8.count + 1 > Self.passageBytes { flush() }
                current += current.isEmpty ? piece : " " + piece
            }
            if current.utf8.count > Self.passageBytes / 2 { flush() } else if !current.isEmpty { current += "\n" }
            if passages.count >= 2_000 { break }
        }
        flush()
        return Array(passages.prefix(2_000).map { PlainText.bounded($0, bytes: Self.passageBytes) })
    }
}

/// The text of an HTML document: scripts, styles and comments dropped, tags removed, the common
/// entities decoded. A reader, not a browser: what comes out is data for the model.
enum DocumentText {
    static func fromHTML(_ html: String) -> String {
        var output = ""
        var rest = Substring(html)
        while let open = rest.firstIndex(of: "<") {
            output += rest[..<open]
            let tail = rest[open...]
            let lowered = tail.prefix(10).lowercased()
            var skipUntil: String?
            if lowered.hasPrefix("<!--") { skipUntil = "-->" }
            else if lowered.hasPrefix("<script") { skipUntil = "</script>" }
            else if lowered.hasPrefix("<style") { skipUntil = "</style>" }
            if let end = skipUntil {
                guard let found = tail.range(of: end, options: .caseInsensitive) else { rest = ""; break }
                rest = tail[found.upperBound...]
                continue
            }
            guard let close = tail.firstIndex(of: ">") else { rest = ""; break }
            let tag = tail[tail.index(after: open)..<close].lowercased()
            if ["p", "/p", "br", "br/", "div", "/div", "li", "h1", "h2", "h3", "/h1", "/h2", "/h3", "tr"].contains(where: { tag.hasPrefix($0) }) { output += "\n\n" } else { output += " " }
            rest = tail[tail.index(after: close)...]
        }
        output += rest
        for (entity, character) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&nbsp;", " "), ("&amp;", "&")] {
            output = output.replacingOccurrences(of: entity, with: character)
        }
        return output
    }
}
