/// Money as an exact integer count of millionths of a US dollar. A gpt-4o-mini call costs far less
/// than a cent, so cents would round real spend to zero; floating point would drift.
public struct Microdollars: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: Int64

    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    public static let zero = Microdollars(0)

    /// Cents as micro-dollars, held to the representable range (never a trap on a huge count).
    public static func cents(_ cents: Int64) -> Microdollars {
        let (micros, overflow) = cents.multipliedReportingOverflow(by: 10_000)
        return Microdollars(overflow ? (cents < 0 ? .min : .max) : micros)
    }

    /// Whole cents for display, rounded half up, as the reference's `cost_cents` shows them.
    public var roundedCents: Int64 { (self.rawValue + 5_000) / 10_000 }

    public static func + (lhs: Microdollars, rhs: Microdollars) -> Microdollars {
        Microdollars(lhs.rawValue + rhs.rawValue)
    }

    public static func < (lhs: Microdollars, rhs: Microdollars) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        self.rawValue = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.rawValue)
    }

    public var description: String {
        let sign = self.rawValue < 0 ? "-" : ""
        let magnitude = self.rawValue.magnitude
        let fraction = String(magnitude % 1_000_000)
        return "\(sign)$\(magnitude / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }
}
