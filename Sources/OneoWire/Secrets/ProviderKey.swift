/// A tenant's provider API key. It prints as `<redacted>` wherever it is interpolated, so a log
/// line or an error message cannot leak it by accident.
public struct ProviderKey: Sendable, Hashable, Codable, CustomStringConvertible, CustomDebugStringConvertible {
    public let secret: String

    public init(_ secret: String) { self.secret = secret }

    public init(from decoder: any Decoder) throws {
        self.secret = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.secret)
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
