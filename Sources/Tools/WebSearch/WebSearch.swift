import Foundation
import OneoWire

/// `web_search {query, max_results?}`: asks the configured search backend (SearXNG's JSON API)
/// and returns the title, URL and snippet of the top results. Everything the backend sends is
/// hostile: the body is capped, parsed by our own parser, and each field is cut to plain text.
struct WebSearch {
    /// The backend's base, e.g. `http://searxng:8080` (the search is `GET {base}/search`).
    let backend: String
    let client: HTTPClient

    static let queryBytes = 512
    static let responseBytes = 2 << 20
    static let titleBytes = 300
    static let snippetBytes = 800
    static let urlBytes = 2048


    func run(arguments: JSONValue, egress: Egress) throws -> JSONValue {
        guard case .string(let query)? = arguments["query"], !query.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ToolFailure(message: "web_search takes {\"query\": \"…\", \"max_results\": 1-\(ToolCatalog.maximumResults)}")
        }
        guard query.utf8.count <= Self.queryBytes else { throw ToolFailure(message: "the query is over \(Self.queryBytes) bytes") }
        let count = ToolCatalog.resultCount(arguments["max_results"])
        var components = URLComponents(string: self.backend.hasSuffix("/") ? self.backend + "search" : self.backend + "/search")
        components?.queryItems = [URLQueryItem(name: "q", value: query), URLQueryItem(name: "format", value: "json")]
        guard let url = components?.url?.absoluteString else { throw ToolFailure(message: "the search backend's URL is not usable") }
        let response = try self.client.perform(
            method: "GET", url: url, headers: ["Accept: application/json"], limit: Self.responseBytes, timeoutSeconds: 15, egress: egress
        )
        guard response.status == 200 else { throw ToolFailure(message: "the search backend answered HTTP \(response.status)") }
        guard let parsed = try? JSONValue.parse(response.body), case .array(let items)? = parsed["results"] else {
            throw ToolFailure(message: "the search backend's answer was not the JSON expected")
        }
        var results: [JSONValue] = []
        for item in items where results.count < count {
            guard case .string(let link)? = item["url"], let url = Self.webURL(link) else { continue }
            let title = item["title"]?.stringValue ?? ""
            let snippet = item["content"]?.stringValue ?? item["snippet"]?.stringValue ?? ""
            results.append([
                "title": .string(PlainText.bounded(title, bytes: Self.titleBytes)),
                "url": .string(url),
                "snippet": .string(PlainText.bounded(snippet, bytes: Self.snippetBytes)),
            ])
        }
        return ["query": .string(query), "results": .array(results)]
    }

    /// An http(s) URL without controls or spaces, at most `urlBytes`: anything else is dropped.
    static func webURL(_ text: String) -> String? {
        guard text.utf8.count <= Self.urlBytes, !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else { return nil }
        let lowered = text.lowercased()
        guard lowered.hasPrefix("https://") || lowered.hasPrefix("http://"), URLComponents(string: text)?.host?.isEmpty == false else { return nil }
        return text
    }
}
