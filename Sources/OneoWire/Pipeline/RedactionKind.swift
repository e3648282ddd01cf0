/// A kind of sensitive value the guard's detectors find and redact from prompts.
public enum RedactionKind: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case card, ssn, iban, apiKey = "api_key", awsKey = "aws_key", jwt, privateKey = "private_key", email, phone

    public static func < (lhs: RedactionKind, rhs: RedactionKind) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Kinds that are personal but often the point of a prompt; a field's config opts into them.
    public static let optIn: Set<RedactionKind> = [.email, .phone]
}
