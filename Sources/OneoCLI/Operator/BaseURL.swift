import ArgumentParser
import Foundation

/// A provider base URL as an operator gives it: http(s), a host, and no credentials or query in
/// it (a URL like `https://user:secret@host/v1?api-key=…` would print a secret wherever the URL
/// is shown).
enum BaseURL {
    static func check(_ text: String, option: String) throws {
        guard text.utf8.count <= 2_000, let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false else {
            throw ValidationError("\(option) must be an http(s) URL with a host")
        }
        guard url.user == nil, url.password == nil, url.query == nil, url.fragment == nil else {
            throw ValidationError("\(option) must not carry credentials, a query or a fragment: keys go in key files")
        }
    }
}
