/// The kinds of field a pipeline can hold. Only `ai_generated` fields are written by the engine.
public enum FieldType: String, Sendable, Hashable, Codable, CaseIterable {
    case text, textarea, number, decimal, currency, email, phone, url, date, datetime, boolean, select
    case multiselect, json, tags
    case aiGenerated = "ai_generated"
}

/// One field of a pipeline, in the pipeline's field order.
public struct PipelineField: Sendable, Hashable, Codable {
    public let id: FieldID
    public let slug: String
    public let name: String
    public let type: FieldType
    public let position: Int
    /// An AI field's config where the reader loaded it; nil for every other field, and for AI
    /// fields in the lists the queue manager sends processors (rendering needs only the kind).
    public let aiConfig: AIFieldConfig?

    public init(id: FieldID, slug: String, name: String, type: FieldType, position: Int, aiConfig: AIFieldConfig?) {
        self.id = id
        self.slug = slug
        self.name = name
        self.type = type
        self.position = position
        self.aiConfig = aiConfig
    }

    public var isAIGenerated: Bool { self.type == .aiGenerated }

    /// Slugs are lower-case identifiers: they appear in templates, JSON keys and URLs.
    public static func isValidSlug(_ slug: String) -> Bool {
        guard let first = slug.unicodeScalars.first, ("a"..."z").contains(first), slug.unicodeScalars.count <= 63 else {
            return false
        }
        return slug.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}
