/// A database identifier tagged with the entity it names, so that the compiler stops a tenant id
/// being passed where a job id is expected.
public struct Identifier<Entity>: Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: Int64

    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    public init(from decoder: any Decoder) throws {
        self.rawValue = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.rawValue)
    }

    public var description: String { String(self.rawValue) }

    /// Parses a decimal identifier as it appears in a URL path or a CLI argument.
    public init?(parsing text: some StringProtocol) {
        guard let value = Int64(text), value > 0 else { return nil }
        self.rawValue = value
    }
}

public enum TenantTag {}
public enum PipelineTag {}
public enum FieldTag {}
public enum RecordTag {}
public enum JobTag {}

public typealias TenantID = Identifier<TenantTag>
public typealias PipelineID = Identifier<PipelineTag>
public typealias FieldID = Identifier<FieldTag>
public typealias RecordID = Identifier<RecordTag>
public typealias JobID = Identifier<JobTag>
