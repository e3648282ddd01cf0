/// Renders a parsed template against one record. Excluded fields are dropped before anything is
/// rendered, so they cannot reach the output through `{*}` or a dotted path.
public struct PromptRenderer: Sendable {
    /// What a placeholder renders when its value is missing or null: never the placeholder text.
    public static let emptyMarker = "(empty)"

    public struct Metadata: Sendable {
        public var recordID: RecordID
        public var pipelineName: String
        public var tenantName: String
        public var currentUser: String?

        public init(recordID: RecordID, pipelineName: String, tenantName: String, currentUser: String?) {
            self.recordID = recordID
            self.pipelineName = pipelineName
            self.tenantName = tenantName
            self.currentUser = currentUser
        }
    }

    public struct Rendered: Sendable, Hashable {
        public let prompt: String
        /// How many of the pipeline's input fields were withheld from the prompt.
        public let excludedFieldCount: Int
    }

    public let fields: [PipelineField]
    public let exclusion: FieldExclusion

    public init(fields: [PipelineField], excludedFields: [String]) {
        self.fields = fields
        self.exclusion = FieldExclusion(excludedFields: excludedFields)
    }

    public func render(_ template: PromptTemplate, data: [String: JSONValue], metadata: Metadata) -> Rendered {
        let visible = self.exclusion.visibleFields(of: self.fields)
        let visibleSlugs = Set(visible.map(\.slug))
        var output = ""
        for segment in template.segments {
            switch segment {
            case .literal(let text):
                output += text
            case .allFields:
                output += visible.compactMap { field -> String? in
                    guard let value = data[field.slug], !value.isNull else { return nil }
                    return "\(field.name): \(Self.format(value))"
                }.joined(separator: "\n")
            case .field(let path, _):
                guard let head = path.first, visibleSlugs.contains(head) else {
                    output += Self.emptyMarker
                    continue
                }
                var value = data[head]
                for key in path.dropFirst() { value = value?.objectValue?[key] }
                output += value.flatMap { $0.isNull ? nil : Self.format($0) } ?? Self.emptyMarker
            case .builtin(let builtin, _):
                switch builtin {
                case .recordID: output += "\(metadata.recordID)"
                case .pipelineName: output += metadata.pipelineName
                case .tenantName: output += metadata.tenantName
                case .currentUser: output += metadata.currentUser ?? Self.emptyMarker
                case .workflowData: output += Self.emptyMarker
                }
            }
        }
        let inputs = self.fields.filter { !$0.isAIGenerated }
        return Rendered(prompt: output, excludedFieldCount: inputs.count - visible.count)
    }

    /// One value as prompt text: strings as they are, whole numbers without a fraction, and
    /// structures as compact JSON with sorted keys (the same record always gives the same bytes).
    public static func format(_ value: JSONValue) -> String {
        switch value {
        case .null: return emptyMarker
        case .bool(let bool): return bool ? "true" : "false"
        case .integer(let integer): return String(integer)
        case .double(let double):
            if double.rounded() == double, abs(double) < 1e15 { return String(Int64(double)) }
            return String(double)
        case .string(let string): return string
        case .array, .object: return value.compactJSON
        }
    }
}
