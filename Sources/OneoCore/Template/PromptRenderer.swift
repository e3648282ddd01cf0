/// Renders a parsed template against one record: the one engine the processor and the preview
/// endpoint use. Excluded and sensitive fields are removed before anything is rendered, so they
/// cannot reach the output through `{*}`, a dotted path or a nested object; then the detectors
/// run over the final text, values included.
public struct PromptRenderer: Sendable {
    public static var emptyMarker: String { ValueFormatter.emptyMarker }

    public struct Metadata: Sendable {
        public var recordID: RecordID?
        public var pipelineName: String
        public var tenantName: String
        public var currentUser: String?
        public var workflowData: JSONValue?

        public init(recordID: RecordID?, pipelineName: String, tenantName: String, currentUser: String?, workflowData: JSONValue? = nil) {
            self.recordID = recordID
            self.pipelineName = pipelineName
            self.tenantName = tenantName
            self.currentUser = currentUser
            self.workflowData = workflowData
        }
    }

    public struct Limits: Sendable, Hashable {
        public var fieldCharacters: Int
        public var promptCharacters: Int

        public init(fieldCharacters: Int = 2_000, promptCharacters: Int = 32_000) {
            self.fieldCharacters = fieldCharacters
            self.promptCharacters = promptCharacters
        }
    }

    /// What the provider will see, and the audit of what it will not.
    public struct Rendered: Sendable, Hashable {
        public let prompt: String
        /// Input fields withheld from the prompt, by slug.
        public let excludedFields: [String]
        /// Nested keys removed from object values.
        public let excludedKeys: Int
        /// `{*}` fields left out, from the end, to keep the prompt within its size limit.
        public let droppedFields: [String]
        /// Values replaced by `[REDACTED:kind]`, per kind.
        public let redactions: [SensitiveValueDetector.Kind: Int]

        public var excludedFieldCount: Int { self.excludedFields.count }

        /// The audit stored on the job: counts and field names, never values.
        public var audit: JSONValue {
            [
                "excluded_fields": .integer(Int64(self.excludedFields.count)),
                "excluded_keys": .integer(Int64(self.excludedKeys)),
                "dropped_fields": .array(self.droppedFields.map(JSONValue.string)),
                "redactions": .object(Dictionary(uniqueKeysWithValues: self.redactions.map { ($0.key.rawValue, JSONValue.integer(Int64($0.value))) })),
            ]
        }
    }

    public let fields: [PipelineField]
    public let exclusion: FieldExclusion
    public let detector: SensitiveValueDetector
    public let limits: Limits
    /// Decided once per renderer, not per record: which fields `{*}` shows, which a placeholder
    /// may name (another AI field's output is a dependency, an excluded field never), and which
    /// input fields the audit counts as withheld.
    private let visible: [PipelineField]
    private let nameable: [String: PipelineField]
    private let withheld: [String]
    /// `Label: ` for each visible field, built once.
    private let labels: [String]

    public init(fields: [PipelineField], exclusion: FieldExclusion, detector: SensitiveValueDetector = SensitiveValueDetector(), limits: Limits = Limits()) {
        self.fields = fields
        self.exclusion = exclusion
        self.detector = detector
        self.limits = limits
        self.visible = exclusion.visibleFields(of: fields)
        self.nameable = Dictionary(
            fields.filter { $0.isAIGenerated || !exclusion.excludes($0) }.map { ($0.slug, $0) },
            uniquingKeysWith: { first, _ in first }
        )
        self.withheld = fields.filter { !$0.isAIGenerated && exclusion.excludes($0) }.map(\.slug)
        self.labels = self.visible.map { $0.name + ": " }
    }

    /// The renderer a field's config asks for, over the tenant's own sensitive names.
    public init(fields: [PipelineField], config: AIFieldConfig, tenantSensitiveNames: [String] = []) {
        self.init(
            fields: fields,
            exclusion: FieldExclusion(excludedFields: config.excludedFields, tenantSensitiveNames: tenantSensitiveNames),
            detector: SensitiveValueDetector(alsoRedact: Set(config.redact)),
            limits: Limits(fieldCharacters: config.maxFieldChars, promptCharacters: config.maxPromptChars)
        )
    }

    public func render(_ template: PromptTemplate, data: [String: JSONValue], metadata: Metadata) -> Rendered {
        let formatter = ValueFormatter(maximumCharacters: self.limits.fieldCharacters)
        let visible = self.visible
        let visibleBySlug = self.nameable
        var excludedKeys = 0

        // Each nameable field's value once, scrubbed of sensitive nested keys.
        var values: [String: JSONValue] = [:]
        values.reserveCapacity(visibleBySlug.count)
        for (slug, _) in visibleBySlug {
            guard let value = data[slug] else { continue }
            guard value.objectValue != nil || value.arrayValue != nil else {
                values[slug] = value
                continue
            }
            let (scrubbed, removed) = self.exclusion.scrub(value, at: [slug.lowercased()])
            values[slug] = scrubbed
            excludedKeys += removed
        }

        var pieces: [String] = []
        var allFieldsAt: [Int] = []
        for segment in template.segments {
            switch segment {
            case .literal(let text):
                pieces.append(text)
            case .allFields:
                allFieldsAt.append(pieces.count)
                pieces.append("")
            case .field(let path, _):
                guard let head = path.first, let field = visibleBySlug[head], !self.exclusion.excludes(path: path) else {
                    pieces.append(Self.emptyMarker)
                    continue
                }
                var value = values[head]
                for key in path.dropFirst() { value = value?.objectValue?[key] }
                pieces.append(value.map { formatter.format($0, as: path.count == 1 ? field.type : .json) } ?? Self.emptyMarker)
            case .builtin(let builtin, _):
                switch builtin {
                case .recordID: pieces.append(metadata.recordID.map { "\($0)" } ?? Self.emptyMarker)
                case .pipelineName: pieces.append(metadata.pipelineName)
                case .tenantName: pieces.append(metadata.tenantName)
                case .currentUser: pieces.append(metadata.currentUser ?? Self.emptyMarker)
                case .workflowData: pieces.append(metadata.workflowData.map { formatter.format($0, as: .json) } ?? Self.emptyMarker)
                }
            }
        }

        // `{*}`: `Label: value` lines in pipeline order; dropped from the end while over the limit.
        var dropped: [String] = []
        if !allFieldsAt.isEmpty {
            var lines: [String] = []
            var slugs: [String] = []
            lines.reserveCapacity(visible.count)
            for (index, field) in visible.enumerated() {
                guard let value = values[field.slug], !value.isNull else { continue }
                lines.append(self.labels[index] + formatter.format(value, as: field.type))
                slugs.append(field.slug)
            }
            let fixed = pieces.reduce(0) { $0 + $1.count }
            var listed = lines.reduce(0) { $0 + $1.count + 1 }
            while !lines.isEmpty, fixed + allFieldsAt.count * listed > self.limits.promptCharacters {
                listed -= lines.removeLast().count + 1
                dropped.insert(slugs.removeLast(), at: 0)
            }
            let expansion = lines.joined(separator: "\n")
            for index in allFieldsAt { pieces[index] = expansion }
        }

        let redacted = self.detector.redact(pieces.joined())
        return Rendered(prompt: redacted.text, excludedFields: self.withheld, excludedKeys: excludedKeys, droppedFields: dropped, redactions: redacted.counts)
    }
}
