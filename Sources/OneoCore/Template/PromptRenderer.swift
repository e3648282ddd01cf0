/// Renders a parsed template against one record: the one engine the processor and the preview
/// endpoint use. Excluded and sensitive fields are never written (no `{*}` line, the empty marker
/// for a placeholder), and every value is written through its field's nested-key filter, so
/// they cannot reach the output through `{*}`, a dotted path or a nested object; then the
/// detectors run over the final text, values included.
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
        /// Nested keys withheld from the object values the prompt shows.
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
    /// Of each nameable field, read per record without copying the field.
    private let slugs: [String]
    private let types: [FieldType]
    /// The nested keys each nameable field's value keeps when written.
    private let nestedKeys: [FieldExclusion.NestedKeys]
    /// Positions in `nameable` of the fields `{*}` shows, in pipeline order.
    private let visible: [Int]
    private let withheld: [String]
    /// `Label: ` of each visible field, as bytes in one buffer: `labels[labelEnds[i-1]..<labelEnds[i]]`.
    private let labels: [UInt8]
    private let labelEnds: [Int]

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
        self.slugs = nameable.map(\.slug)
        self.types = nameable.map(\.type)
        self.nestedKeys = nameable.map { exclusion.nestedKeys(at: [$0.slug.lowercased()]) }
        self.visible = visible
        self.withheld = fields.filter { !$0.isAIGenerated && exclusion.excludes($0) }.map(\.slug)
        var labels: [UInt8] = []
        var labelEnds: [Int] = []
        for position in visible {
            labels.append(contentsOf: nameable[position].name.utf8)
            labels.append(contentsOf: ": ".utf8)
            labelEnds.append(labels.count)
        }
        self.labels = labels
        self.labelEnds = labelEnds
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
        // Nested keys withheld, per nameable field: a field shown twice counts once, at its
        // largest showing (a whole value holds whatever a dotted path into it withholds).
        var withheldKeys: [Int] = []
        var workflowKeysWithheld = 0
        func count(_ omitted: Int, of index: Int) {
            guard omitted > 0 else { return }
            if withheldKeys.isEmpty { withheldKeys = [Int](repeating: 0, count: self.nameable.count) }
            withheldKeys[index] = max(withheldKeys[index], omitted)
        }

        // Everything but `{*}` goes into one byte buffer; each `{*}` is an offset in it.
        var fixed: [UInt8] = []
        fixed.reserveCapacity(1024)
        var allFieldsAt: [Int] = []
        for segment in template.segments {
            switch segment {
            case .literal(let text):
                fixed.appendUTF8(text)
            case .allFields:
                allFieldsAt.append(fixed.count)
            case .field(let path, _):
                guard let head = path.first, let index = self.nameableIndex[head], !self.exclusion.excludes(path: path) else {
                    fixed.append(contentsOf: Self.emptyMarker.utf8)
                    continue
                }
                var value = data[head]
                for key in path.dropFirst() { value = value?.objectValue?[key] }
                guard let value else {
                    fixed.append(contentsOf: Self.emptyMarker.utf8)
                    continue
                }
                if path.count == 1 {
                    count(formatter.write(value, as: self.types[index], keeping: self.nestedKeys[index], to: &fixed), of: index)
                } else {
                    count(formatter.write(value, as: .json, keeping: self.exclusion.nestedKeys(at: path.map { $0.lowercased() }), to: &fixed), of: index)
                }
            case .builtin(let builtin, _):
                switch builtin {
                case .recordID: fixed.append(contentsOf: (metadata.recordID.map { "\($0)" } ?? Self.emptyMarker).utf8)
                case .pipelineName: fixed.append(contentsOf: metadata.pipelineName.utf8)
                case .tenantName: fixed.append(contentsOf: metadata.tenantName.utf8)
                case .currentUser: fixed.append(contentsOf: (metadata.currentUser ?? Self.emptyMarker).utf8)
                case .workflowData:
                    // Workflow data is tenant data too: its sensitive keys are withheld like a field's.
                    if let data = metadata.workflowData {
                        workflowKeysWithheld = formatter.write(data, as: .json, keeping: self.exclusion.nestedKeys(at: ["workflow_data"]), to: &fixed)
                    } else {
                        fixed.append(contentsOf: Self.emptyMarker.utf8)
                    }
                }
            }
        }

        // `{*}`: `Label: value` lines in pipeline order, written into a second buffer; lines are
        // dropped from the end, deterministically, only when the prompt would exceed its limit.
        var expansion: [UInt8] = []
        var dropped: [String] = []
        if !allFieldsAt.isEmpty {
            expansion.reserveCapacity(4096)
            var lineEnds: [Int] = []
            lineEnds.reserveCapacity(self.visible.count)
            var shown: [Int] = []
            shown.reserveCapacity(self.visible.count)
            self.labels.withUnsafeBufferPointer { labels in
                var labelStart = 0
                for (position, index) in self.visible.enumerated() {
                    defer { labelStart = self.labelEnds[position] }
                    guard let value = data[self.slugs[index]], !value.isNull else { continue }
                    if !lineEnds.isEmpty { expansion.append(UInt8(ascii: "\n")) }
                    expansion.append(contentsOf: UnsafeBufferPointer(rebasing: labels[labelStart..<self.labelEnds[position]]))
                    count(formatter.write(value, as: self.types[index], keeping: self.nestedKeys[index], to: &expansion), of: index)
                    lineEnds.append(expansion.count)
                    shown.append(index)
                }
            }
            // A character is at least one UTF-8 byte: within the limit by bytes is within it by
            // characters, and characters are only counted when bytes exceed it.
            if fixed.count + allFieldsAt.count * expansion.count > self.limits.promptCharacters {
                let fixedCharacters = String(decoding: fixed, as: UTF8.self).count
                var listed = String(decoding: expansion, as: UTF8.self).count
                var kept = lineEnds.count
                while kept > 0, fixedCharacters + allFieldsAt.count * listed > self.limits.promptCharacters {
                    // The last kept line and the newline before it.
                    let start = kept > 1 ? lineEnds[kept - 2] : 0
                    listed -= String(decoding: expansion[start..<lineEnds[kept - 1]], as: UTF8.self).count
                    kept -= 1
                }
                dropped = shown[kept...].map { self.slugs[$0] }
                expansion.removeSubrange((kept == 0 ? 0 : lineEnds[kept - 1])...)
            }
        }

        var prompt: [UInt8]
        if allFieldsAt.isEmpty {
            prompt = fixed
        } else {
            prompt = []
            prompt.reserveCapacity(fixed.count + allFieldsAt.count * expansion.count)
            var copied = 0
            for offset in allFieldsAt {
                prompt.append(contentsOf: fixed[copied..<offset])
                prompt.append(contentsOf: expansion)
                copied = offset
            }
            prompt.append(contentsOf: fixed[copied...])
        }

        let redacted = self.detector.redact(bytes: prompt)
        return Rendered(
            prompt: redacted.text, excludedFields: self.withheld, excludedKeys: withheldKeys.reduce(0, +) + workflowKeysWithheld, droppedFields: dropped,
            redactions: redacted.counts)
    }
}
