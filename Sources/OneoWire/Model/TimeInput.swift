public import Foundation

/// A time as an operator or an API caller writes it: an ISO 8601 time (`2026-11-28T12:00:00Z`)
/// or a date (`2026-11-28`, midnight UTC). One reading for the API's filters and the CLI's.
public enum TimeInput {
    public static func parse(_ text: String) -> Date? {
        guard text.utf8.count <= 40 else { return nil }
        if let date = try? Date(text, strategy: .iso8601) { return date }
        return try? Date(text + "T00:00:00Z", strategy: .iso8601)
    }
}
