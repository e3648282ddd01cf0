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
    /// Decided once per renderer, not per record: which fields a placeholder may name (another
    /// AI field's output is a dependency, an excluded field never), which of those `{*}` shows,
    /// and which input fields the audit counts as withheld.
    private let nameable: [PipelineField]
    private let nameableIndex: [String: Int]
    /// Positions in `nameable` of the fields `{*}` shows, in pipeline order.
    private let visible: [Int]
    private let withheld: [String]
    /// `Label: ` for each visible field, built once.
    private let labels: [String]

    public init(fields: [PipelineField], exclusion: FieldExclusion, detector: SensitiveValueDetector = SensitiveValueDetector(), limits: Limits = Limits()) {
        self.fields = fields
        self.exclusion = exclusion
        self.detector = detector
        self.limits = limits
        var nameable: [PipelineField] = []
        var index: [String: Int] = [:]
        var visible: [Int] = []
        for field in fields where field.isAIGenerated || !exclusion.excludes(field) {
            guard index[field.slug] == nil else { continue }
            index[field.slug] = nameable.count
            if !exclusion.excludes(field) { visible.append(nameable.count) }
            nameable.append(field)
        }
        self.nameable = nameable
        self.nameableIndex = index
        self.visible = visible
        self.withheld = fields.filter { !$0.isAIGenerated && exclusion.excludes($0) }.map(\.slug)
        self.labels = visible.map { nameable[$0].name + ": " }
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
        var excludedKeys = 0

        // Each nameable field's value once, scrubbed of sensitive nested keys.
        var values = [JSONValue?](repeating: nil, count: self.nameable.count)
        for (index, field) in self.nameable.enumerated() {
            guard let value = data[field.slug] else { continue }
            switch value {
            case .object, .array:
                let (scrubbed, removed) = self.exclusion.scrub(value, at: [field.slug.lowercased()])
                values[index] = scrubbed
                excludedKeys += removed
            default:
                values[index] = value
            }
        }

        var pieces: [String] = []
        pieces.reserveCapacity(template.segments.count)
        var allFieldsAt: [Int] = []
        for segment in template.segments {
            switch segment {
            case .literal(let text):
                pieces.append(text)
            case .allFields:
                allFieldsAt.append(pieces.count)
                pieces.append("")
            case .field(let path, _):
                guard let head = path.first, let index = self.nameableIndex[head], !self.exclusion.excludes(path: path) else {
                    pieces.append(Self.emptyMarker)
                    continue
                }
                var value = values[index]
                for key in path.dropFirst() { value = value?.objectValue?[key] }
                pieces.append(value.map { formatter.format($0, as: path.count == 1 ? self.nameable[index].type : .json) } ?? Self.emptyMarker)
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

        // `{*}`: `Label: value` lines in pipeline order, written straight into one buffer; lines are
        // dropped from the end, deterministically, only when the prompt would exceed its limit.
        var expansion = ""
        var dropped: [String] = []
        if !allFieldsAt.isEmpty {
            var lineEnds: [String.Index] = []
            var slugs: [String] = []
            lineEnds.reserveCapacity(self.visible.count)
            for (position, index) in self.visible.enumerated() {
                guard let value = values[index], !value.isNull else { continue }
                if !lineEnds.isEmpty { expansion += "\n" }
                expansion += self.labels[position]
                expansion += formatter.format(value, as: self.nameable[index].type)
                lineEnds.append(expansion.endIndex)
                slugs.append(self.nameable[index].slug)
            }
            // A character is at least one UTF-8 byte: within the limit by bytes is within it by
            // characters, and characters are only counted when bytes exceed it.
            let fixedBytes = pieces.reduce(0) { $0 + $1.utf8.count }
            if fixedBytes + allFieldsAt.count * expansion.utf8.count > self.limits.promptCharacters {
                let fixed = pieces.reduce(0) { $0 + $1.count }
                var listed = expansion.count
                var kept = lineEnds.count
                while kept > 0, fixed + allFieldsAt.count * listed > self.limits.promptCharacters {
                    // The last kept line and the newline before it.
                    let start = kept > 1 ? lineEnds[kept - 2] : expansion.startIndex
                    listed -= expansion[start..<lineEnds[kept - 1]].count
                    kept -= 1
                }
                dropped = Array(slugs[kept...])
                expansion = kept == 0 ? "" : String(expansion[..<lineEnds[kept - 1]])
            }
        }

        var prompt = ""
        prompt.reserveCapacity(pieces.reduce(0) { $0 + $1.utf8.count } + allFieldsAt.count * expansion.utf8.count)
        for (index, piece) in pieces.enumerated() {
            prompt += allFieldsAt.contains(index) ? expansion : piece
        }

        let redacted = self.detector.redact(prompt)
        return Rendered(prompt: redacted.text, excludedFields: self.withheld, excludedKeys: excludedKeys, droppedFields: dropped, redactions: redacted.counts)
    }
}
