/// Which fields a prompt must never see: those named in `excluded_fields` by slug or label,
/// compared case-insensitively, and every AI output (a prompt sees inputs, not other outputs).
public struct FieldExclusion: Sendable, Hashable {
    private let names: Set<String>

    public init(excludedFields: [String]) {
        self.names = Set(excludedFields.map { $0.lowercased() })
    }

    public func excludes(_ field: PipelineField) -> Bool {
        field.isAIGenerated || self.names.contains(field.slug.lowercased()) || self.names.contains(field.name.lowercased())
    }

    /// The fields `{*}` expands to, in pipeline order.
    public func visibleFields(of fields: [PipelineField]) -> [PipelineField] {
        fields.filter { !self.excludes($0) }
    }
}
