public import OneoWire
/// Renders a parsed template against one record: the one engine the processor and the preview
/// endpoint use. Excluded and sensitive fields are never written (no `{*}` line, the empty marker
/// for a placeholder), and every value is written through its field's nested-key filter, so
/// they cannot reach the output through `{*}`, a dotted path or a nested object; then the
/// detectors run over the final text, values included.
///
/// Record data is fenced from the template's instructions (`PromptFence`), and the prompt as a
/// whole never exceeds `max_prompt_chars` Unicode scalars (itself at most
/// `PromptLimits.promptCharacters`): the template's own text is kept, values share what is left
/// in template order, a value that does not fit is redacted whole and cut, later placeholders
/// are left empty, and `{*}` drops lines from its end. Each distinct placeholder is formatted
/// once per render, so the work is linear in the record and the template whatever repeats.
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

        /// Both are clamped to the hard ceilings of `PromptLimits`, whatever a config says.
        public init(fieldCharacters: Int = 2_000, promptCharacters: Int = 32_000) {
            self.fieldCharacters = min(max(fieldCharacters, 1), PromptLimits.fieldCharacters)
            self.promptCharacters = min(max(promptCharacters, 1), PromptLimits.promptCharacters)
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
        /// Placeholders (`{notes}`) cut or left empty to keep the prompt within its size limit.
        public let droppedPlaceholders: [String]
        /// Whether the prompt reached its size limit (something above was cut or left out).
        public let reachedLimit: Bool
        /// Values replaced by `[REDACTED:kind]`, per kind.
        public let redactions: [SensitiveValueDetector.Kind: Int]

        public var excludedFieldCount: Int { self.excludedFields.count }

        /// The audit stored on the job: counts and field names, never values.
        public var audit: JSONValue {
            [
                "excluded_fields": .integer(Int64(self.excludedFields.count)),
                "excluded_keys": .integer(Int64(self.excludedKeys)),
                "dropped_fields": .array(self.droppedFields.map(JSONValue.string)),
                "dropped_placeholders": .array(self.droppedPlaceholders.map(JSONValue.string)),
                "prompt_limit_reached": .bool(self.reachedLimit),
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
    /// Whether each nameable field is an AI output (fenced as `<ai_output>` when named).
    private let isAIOutput: [Bool]
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
        self.isAIOutput = nameable.map(\.isAIGenerated)
        self.nestedKeys = nameable.map { exclusion.nestedKeys(at: [$0.slug.lowercased()]) }
        self.visible = visible
        self.withheld = fields.filter { !$0.isAIGenerated && exclusion.excludes($0) }.map(\.slug)
        var labels: [UInt8] = []
        var labelEnds: [Int] = []
        for position in visible {
            // Labels are tenant text too: no line break or fence tag in them either.
            PromptFence.appendEscaped(nameable[position].name, to: &labels)
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
        let limit = self.limits.promptCharacters
        var rendered = self.render(template, data: data, metadata: metadata, within: limit)
        // A redaction marker can be longer than what it replaced (`[REDACTED:ssn]` for nine
        // digits): values then get less room and the prompt is rendered again, so the template's
        // own text survives. Only when even that fails (a template over its own limit) is the end cut.
        var scalars = rendered.prompt.utf8.count > limit ? rendered.prompt.unicodeScalars.count : 0
        var room = limit
        for _ in 0..<2 where scalars > limit {
            // At worst the values get no room at all: the template's own text then fits.
            room = max(0, room - (scalars - limit + 8))
            rendered = self.render(template, data: data, metadata: metadata, within: room)
            scalars = rendered.prompt.utf8.count > limit ? rendered.prompt.unicodeScalars.count : 0
        }
        guard scalars > limit else { return rendered }
        return Rendered(
            prompt: String(String.UnicodeScalarView(rendered.prompt.unicodeScalars.prefix(limit))), excludedFields: rendered.excludedFields,
            excludedKeys: rendered.excludedKeys, droppedFields: rendered.droppedFields, droppedPlaceholders: rendered.droppedPlaceholders,
            reachedLimit: true, redactions: rendered.redactions)
    }

    /// One render with `limit` as the bound before the final redaction.
    private func render(_ template: PromptTemplate, data: [String: JSONValue], metadata: Metadata, within limit: Int) -> Rendered {
        let formatter = ValueFormatter(maximumCharacters: self.limits.fieldCharacters, detector: self.detector.kinds.isEmpty ? nil : self.detector)
        // Nested keys withheld, per nameable field: a field shown twice counts once, at its
        // largest showing (a whole value holds whatever a dotted path into it withholds).
        var withheldKeys: [Int] = []
        var workflowKeysWithheld = 0
        func count(_ omitted: Int, of index: Int) {
            guard omitted > 0 else { return }
            if withheldKeys.isEmpty { withheldKeys = [Int](repeating: 0, count: self.nameable.count) }
            withheldKeys[index] = max(withheldKeys[index], omitted)
        }
        var redactedBeforeCut: [SensitiveValueDetector.Kind: Int] = [:]
        var droppedPlaceholders: [String] = []
        var reachedLimit = false

        // What the template itself takes (its text and the fences around values) is kept; the
        // values share the rest, in template order.
        var values = max(0, limit - self.reserved(template))

        // Everything but `{*}` goes into one byte buffer; each `{*}` is an offset in it.
        var fixed: [UInt8] = []
        fixed.reserveCapacity(1024)
        var allFieldsAt: [Int] = []
        // Each distinct placeholder is formatted once; a repeat copies its bytes.
        var formatted: [(path: [String], range: Range<Int>)] = []
        /// Keeps `fixed[start...]` (a value just written) within what values have left: redacted
        /// whole and cut when it does not fit. Returns false when it had to be cut.
        func fit(from start: Int, placeholder: String) -> Bool {
            let written = fixed.count - start
            if written <= values {
                values -= written
                return true
            }
            let scalars = ValueFormatter.scalarCount(fixed, from: start)
            if scalars <= values {
                values -= scalars
                return true
            }
            for (kind, count) in self.detector.redact(&fixed, from: start) { redactedBeforeCut[kind, default: 0] += count }
            let kept = max(0, values - 1)
            fixed.removeSubrange(ValueFormatter.offset(ofScalar: kept, in: fixed, from: start)...)
            if values > 0 { fixed.append(contentsOf: Self.cutMarker) }
            values = 0
            droppedPlaceholders.append(placeholder)
            reachedLimit = true
            return false
        }
        func writeValue(_ path: [String], open: String, close: String, _ body: (inout [UInt8]) -> Void) {
            fixed.append(contentsOf: open.utf8)
            let start = fixed.count
            if values == 0 {
                droppedPlaceholders.append("{\(path.joined(separator: "."))}")
                reachedLimit = true
            } else if let earlier = formatted.first(where: { $0.path == path }) {
                let copy = Array(fixed[earlier.range])
                fixed.append(contentsOf: copy)
                _ = fit(from: start, placeholder: "{\(path.joined(separator: "."))}")
            } else {
                body(&fixed)
                let whole = fit(from: start, placeholder: "{\(path.joined(separator: "."))}")
                if whole { formatted.append((path, start..<fixed.count)) }
            }
            fixed.append(contentsOf: close.utf8)
        }

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
                guard let value, !value.isNull else {
                    fixed.append(contentsOf: Self.emptyMarker.utf8)
                    continue
                }
                let ai = self.isAIOutput[index]
                writeValue(path, open: ai ? PromptFence.aiOutputOpen : PromptFence.dataOpen, close: ai ? PromptFence.aiOutputClose : PromptFence.dataClose) { out in
                    if path.count == 1 {
                        count(formatter.write(value, as: self.types[index], keeping: self.nestedKeys[index], to: &out, redactions: &redactedBeforeCut), of: index)
                    } else {
                        count(formatter.write(value, as: .json, keeping: self.exclusion.nestedKeys(at: path.map { $0.lowercased() }), to: &out, redactions: &redactedBeforeCut), of: index)
                    }
                }
            case .builtin(let builtin, _):
                switch builtin {
                case .recordID: fixed.append(contentsOf: (metadata.recordID.map { "\($0)" } ?? Self.emptyMarker).utf8)
                case .pipelineName, .tenantName, .currentUser:
                    let text = builtin == .pipelineName ? metadata.pipelineName : (builtin == .tenantName ? metadata.tenantName : (metadata.currentUser ?? Self.emptyMarker))
                    writeValue([builtin.rawValue], open: "", close: "") { PromptFence.appendEscaped(text, to: &$0) }
                case .workflowData:
                    // Workflow data is tenant data too: its sensitive keys are withheld like a field's.
                    if let data = metadata.workflowData {
                        writeValue([builtin.rawValue], open: PromptFence.dataOpen, close: PromptFence.dataClose) { out in
                            workflowKeysWithheld = formatter.write(data, as: .json, keeping: self.exclusion.nestedKeys(at: ["workflow_data"]), to: &out, redactions: &redactedBeforeCut)
                        }
                    } else {
                        fixed.append(contentsOf: Self.emptyMarker.utf8)
                    }
                }
            }
        }

        // `{*}`: `Label: value` lines in pipeline order, written into a second buffer and fenced
        // as one block; lines are dropped from the end, deterministically, only when the prompt
        // would exceed its limit. Writing stops once the lines alone exceed it.
        var expansion: [UInt8] = []
        var dropped: [String] = []
        if !allFieldsAt.isEmpty {
            let fixedScalars = fixed.count <= limit ? fixed.count : ValueFormatter.scalarCount(fixed)
            let room = max(0, limit - fixedScalars - allFieldsAt.count * Self.blockScalars) / allFieldsAt.count
            expansion.reserveCapacity(4096)
            var lineEnds: [Int] = []
            lineEnds.reserveCapacity(self.visible.count)
            var shown: [Int] = []
            shown.reserveCapacity(self.visible.count)
            var expansionScalars = 0
            var counted = 0
            self.labels.withUnsafeBufferPointer { labels in
                var labelStart = 0
                for (position, index) in self.visible.enumerated() {
                    defer { labelStart = self.labelEnds[position] }
                    guard let value = data[self.slugs[index]], !value.isNull else { continue }
                    if expansion.count > room {
                        // Scalars, counted as far as written, decide; past the room no more lines.
                        for byte in expansion[counted...] where byte & 0xC0 != 0x80 { expansionScalars += 1 }
                        counted = expansion.count
                        if expansionScalars > room {
                            dropped.append(self.slugs[index])
                            continue
                        }
                    }
                    if !lineEnds.isEmpty { expansion.append(UInt8(ascii: "\n")) }
                    expansion.append(contentsOf: UnsafeBufferPointer(rebasing: labels[labelStart..<self.labelEnds[position]]))
                    count(formatter.write(value, as: self.types[index], keeping: self.nestedKeys[index], to: &expansion, redactions: &redactedBeforeCut), of: index)
                    lineEnds.append(expansion.count)
                    shown.append(index)
                }
            }
            // A scalar is at least one UTF-8 byte: within the room by bytes is within it by
            // scalars, and scalars are only counted when bytes exceed it.
            if expansion.count > room {
                var listed = ValueFormatter.scalarCount(expansion)
                var kept = lineEnds.count
                while kept > 0, listed > room {
                    // The last kept line and the newline before it.
                    let start = kept > 1 ? lineEnds[kept - 2] : 0
                    for byte in expansion[start..<lineEnds[kept - 1]] where byte & 0xC0 != 0x80 { listed -= 1 }
                    kept -= 1
                }
                dropped = shown[kept...].map { self.slugs[$0] } + dropped
                expansion.removeSubrange((kept == 0 ? 0 : lineEnds[kept - 1])...)
            }
            if !dropped.isEmpty { reachedLimit = true }
        }

        var prompt: [UInt8]
        if allFieldsAt.isEmpty {
            prompt = fixed
        } else {
            // The block on lines of its own: its tags are whole lines, and no value has a line break.
            var block: [UInt8] = [UInt8(ascii: "\n")]
            block.append(contentsOf: PromptFence.recordDataOpen.utf8)
            block.append(UInt8(ascii: "\n"))
            block.append(contentsOf: expansion)
            if !expansion.isEmpty { block.append(UInt8(ascii: "\n")) }
            block.append(contentsOf: PromptFence.recordDataClose.utf8)
            block.append(UInt8(ascii: "\n"))
            prompt = []
            prompt.reserveCapacity(fixed.count + allFieldsAt.count * block.count)
            var copied = 0
            for offset in allFieldsAt {
                prompt.append(contentsOf: fixed[copied..<offset])
                prompt.append(contentsOf: block)
                copied = offset
            }
            prompt.append(contentsOf: fixed[copied...])
        }

        // The caller keeps the bound: a cut after redaction leaves no part of a secret.
        let redacted = self.detector.redact(bytes: prompt)
        var redactions = redacted.counts
        for (kind, count) in redactedBeforeCut { redactions[kind, default: 0] += count }
        return Rendered(
            prompt: redacted.text, excludedFields: self.withheld, excludedKeys: withheldKeys.reduce(0, +) + workflowKeysWithheld, droppedFields: dropped,
            droppedPlaceholders: droppedPlaceholders, reachedLimit: reachedLimit, redactions: redactions)
    }

    /// Where a value was cut at the prompt's limit.
    private static let cutMarker = Array("…".utf8)
    /// Scalars of the `{*}` block's fence: the tags and the newlines around and inside them.
    private static let blockScalars = PromptFence.recordDataOpen.unicodeScalars.count + PromptFence.recordDataClose.unicodeScalars.count + 4

    /// The scalars the template takes whatever the record holds: its text, the fences around
    /// placeholder values and `{*}` blocks, and the empty marker where a value may be missing.
    private func reserved(_ template: PromptTemplate) -> Int {
        var total = template.literalScalars
        for segment in template.segments {
            switch segment {
            case .literal: break
            case .allFields: total += Self.blockScalars
            case .field(let path, _):
                let ai = path.first.flatMap { self.nameableIndex[$0] }.map { self.isAIOutput[$0] } ?? false
                total += ai ? Self.aiFenceScalars : Self.dataFenceScalars
                total += Self.emptyMarker.unicodeScalars.count
            case .builtin(let builtin, _):
                total += builtin == .workflowData ? Self.dataFenceScalars : 0
                total += Self.emptyMarker.unicodeScalars.count
            }
        }
        return total
    }

    private static let dataFenceScalars = PromptFence.dataOpen.unicodeScalars.count + PromptFence.dataClose.unicodeScalars.count
    private static let aiFenceScalars = PromptFence.aiOutputOpen.unicodeScalars.count + PromptFence.aiOutputClose.unicodeScalars.count
}
