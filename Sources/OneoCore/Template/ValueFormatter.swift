import Foundation

/// One value as prompt text. The same value always gives the same bytes (so the cache works):
/// strings as they are, numbers without float noise, money as `USD 1,234.50`, dates in ISO 8601,
/// lists of plain values joined with commas, structures as compact JSON with sorted keys, and
/// long text cut at the field's limit with a visible marker.
public struct ValueFormatter: Sendable {
    public static let emptyMarker = "(empty)"

    public let maximumCharacters: Int

    public init(maximumCharacters: Int) {
        self.maximumCharacters = maximumCharacters
    }

    public func format(_ value: JSONValue, as type: FieldType = .text) -> String {
        let text: String
        switch value {
        case .null: return Self.emptyMarker
        case .bool(let bool): text = bool ? "true" : "false"
        case .integer(let integer): text = type == .currency ? Self.grouped(Double(integer), decimals: 2) : String(integer)
        case .double(let double): text = type == .currency ? Self.grouped(double, decimals: 2) : Self.number(double)
        case .string(let string):
            switch type {
            case .date, .datetime: text = Self.isoDate(string) ?? string
            default: text = string
            }
        case .array(let items):
            if items.allSatisfy({ if case .array = $0 { return false } else if case .object = $0 { return false } else { return true } }) {
                text = items.map { self.format($0) }.joined(separator: ", ")
            } else {
                text = value.compactJSON
            }
        case .object(let object):
            if let money = Self.money(object) { text = money } else { text = value.compactJSON }
        }
        return self.truncated(text)
    }

    func truncated(_ text: String) -> String {
        guard text.count > self.maximumCharacters else { return text }
        let kept = text.prefix(self.maximumCharacters)
        return "\(kept)… [truncated \(text.count - kept.count) characters]"
    }

    /// `{"amount": 1234.5, "currency": "USD"}` → `USD 1,234.50`.
    static func money(_ object: [String: JSONValue]) -> String? {
        guard object.count == 2, case .string(let currency)? = object["currency"], currency.count == 3 else { return nil }
        let amount: Double
        switch object["amount"] {
        case .integer(let integer)?: amount = Double(integer)
        case .double(let double)?: amount = double
        case .string(let string)?: guard let parsed = Double(string) else { return nil }; amount = parsed
        default: return nil
        }
        return "\(currency.uppercased()) \(Self.grouped(amount, decimals: 2))"
    }

    /// Up to 12 significant digits: `0.1 + 0.2` prints `0.3`, `1e21` stays exact enough.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "Infinity" : "-Infinity") }
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        var text = String(format: "%.12g", value)
        if text.contains("."), !text.contains("e") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }

    static func grouped(_ value: Double, decimals: Int) -> String {
        let fixed = String(format: "%.\(decimals)f", abs(value))
        let parts = fixed.split(separator: ".", maxSplits: 1)
        var integer = String(parts[0])
        var groups: [String] = []
        while integer.count > 3 {
            groups.insert(String(integer.suffix(3)), at: 0)
            integer.removeLast(3)
        }
        groups.insert(integer, at: 0)
        let sign = value < 0 ? "-" : ""
        return sign + groups.joined(separator: ",") + (parts.count > 1 ? "." + parts[1] : "")
    }

    /// A date stays `YYYY-MM-DD`; a timestamp becomes UTC `YYYY-MM-DDTHH:MM:SSZ`.
    static func isoDate(_ string: String) -> String? {
        let trimmed = string.trimmingCharacters(in: .whitespaces)
        if trimmed.count == 10, trimmed.range(of: #"^\d{4}-\d{2}-\d{2}$"#, options: .regularExpression) != nil { return trimmed }
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let date = parser.date(from: trimmed) ?? {
            parser.formatOptions = [.withInternetDateTime]
            return parser.date(from: trimmed)
        }()
        guard let date else { return nil }
        let printer = ISO8601DateFormatter()
        printer.formatOptions = [.withInternetDateTime]
        printer.timeZone = TimeZone(identifier: "UTC")
        return printer.string(from: date)
    }
}
