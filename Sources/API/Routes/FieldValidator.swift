import OneoWire
import OneoPrompt
import OneoStore
import OneoCore

/// Checks a new field before it is stored, so that a bad prompt fails with 422 when configured
/// rather than as a failed job later: the template parses; every placeholder names a field; none
/// names an excluded or sensitive field; and no AI field comes to depend on itself, directly or
/// through other AI fields.
enum FieldValidator {
    /// Fields of one pipeline: every record write reads them all, and every `{*}` may show them.
    static let maximumFields = 500

    static func validate(
        name: String,
        slug: String,
        fieldType: String,
        aiConfig: JSONValue?,
        existing: [PipelineField],
        tenantSensitiveNames: [String],
        models: ModelCatalog,
        defaultModel: String
    ) throws(APIError) -> (FieldType, AIFieldConfig?) {
        guard existing.count < Self.maximumFields else {
            throw APIError.invalid("a pipeline holds at most \(Self.maximumFields) fields; this one is full")
        }
        guard PipelineField.isValidSlug(slug) else {
            throw APIError.invalid("slug must be lower-case letters, digits and '_', starting with a letter (at most 63)")
        }
        try self.checkName(name)
        guard let type = FieldType(rawValue: fieldType) else {
            throw APIError.invalid("field_type '\(fieldType)' is unknown (known: \(FieldType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard type == .aiGenerated else {
            guard aiConfig == nil || aiConfig == .null else { throw APIError.invalid("ai_config is only allowed on ai_generated fields") }
            return (type, nil)
        }
        guard let aiConfig, !aiConfig.isNull else { throw APIError.invalid("an ai_generated field needs an ai_config with a prompt") }
        let config = try self.config(aiConfig)
        _ = try self.model(of: config, models: models, defaultModel: defaultModel)
        let template = try self.template(config.prompt)
        try self.checkPlaceholders(template, config: config, slug: slug, existing: existing, tenantSensitiveNames: tenantSensitiveNames)
        for trigger in config.triggerFields where !existing.contains(where: { $0.slug == trigger }) {
            throw APIError.invalid("ai_config.trigger_fields names '\(trigger)', which is no field of this pipeline")
        }
        let candidate = PipelineField(id: FieldID(0), slug: slug, name: name, type: type, position: existing.count, aiConfig: config)
        if let cycle = self.dependencyCycle(from: candidate, among: existing + [candidate]) {
            // The cycle leaves this field through one of its own placeholders: name it.
            let placeholder = template.segments.lazy.compactMap { segment -> (String, Int)? in
                guard case .field(let path, let position) = segment, path.first == cycle[1] else { return nil }
                return ("{\(path.joined(separator: "."))}", position)
            }.first
            let at = placeholder.map { "placeholder '\($0.0)' at position \($0.1) " } ?? ""
            throw APIError.invalid("ai_config.prompt: \(at)makes the AI fields depend on each other in a cycle: \(cycle.joined(separator: " → "))")
        }
        return (type, config)
    }

    /// A pipeline's or field's name: 1 to 200 Unicode scalars (not grapheme clusters: one
    /// "character" of 100,000 combining marks is 100,000 scalars), no control characters (a
    /// label is written into every `{*}` line).
    static func checkName(_ name: String) throws(APIError) {
        let scalars = name.unicodeScalars.count
        guard scalars >= 1, scalars <= 200 else { throw APIError.invalid("name must be 1 to 200 characters (Unicode scalars); it has \(scalars)") }
        if name.unicodeScalars.contains(where: { $0.value == 0 }) {
            throw APIError.invalid("name contains a NUL character (U+0000), which cannot be stored")
        }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }) {
            throw APIError.invalid("name must not contain control characters or line breaks")
        }
    }

    /// The model a config runs on, refused when it has no price or cannot give the replies its
    /// `output_type` needs.
    static func model(of config: AIFieldConfig, models: ModelCatalog, defaultModel: String, key: String = "ai_config") throws(APIError) -> String {
        let model = config.model ?? defaultModel
        guard let priced = models.model(model) else {
            throw APIError.invalid(
                "\(config.model == nil ? "the tenant's default model" : "\(key).model") '\(String(model.unicodeScalars.prefix(100)))' has no price; "
                    + "an operator adds models with serve --models"
            )
        }
        guard priced.responseFormats >= config.neededResponseFormat else {
            throw APIError.invalid(
                "\(key).output_type \(config.outputType.rawValue) needs \(config.neededResponseFormat.rawValue) replies, which model '\(String(model.unicodeScalars.prefix(100)))' does not give"
            )
        }
        return model
    }

    /// Validates an `ai_config` as the API reports it: the message names the key at fault.
    static func config(_ json: JSONValue) throws(APIError) -> AIFieldConfig {
        do {
            return try AIFieldConfig(validating: json)
        } catch {
            throw APIError.invalid(error.description)
        }
    }

    /// Parses a prompt as the API reports it: the message names the problem and its position.
    static func template(_ prompt: String) throws(APIError) -> PromptTemplate {
        do {
            return try PromptTemplate(parsing: prompt)
        } catch {
            throw APIError.invalid("ai_config.prompt: \(error.description)")
        }
    }

    static func checkPlaceholders(_ template: PromptTemplate, config: AIFieldConfig, slug: String, existing: [PipelineField], tenantSensitiveNames: [String]) throws(APIError) {
        let exclusion = FieldExclusion(excludedFields: config.excludedFields, tenantSensitiveNames: tenantSensitiveNames)
        let bySlug = Dictionary(existing.map { ($0.slug, $0) }, uniquingKeysWith: { first, _ in first })
        for segment in template.segments {
            guard case .field(let path, let position) = segment, let head = path.first else { continue }
            let placeholder = "{\(path.joined(separator: "."))}"
            guard head != slug else {
                throw APIError.invalid("ai_config.prompt: placeholder '\(placeholder)' at position \(position) makes the field depend on itself")
            }
            guard let field = bySlug[head] else {
                throw APIError.invalid("ai_config.prompt: placeholder '\(placeholder)' at position \(position) names no field of this pipeline")
            }
            if let reason = exclusion.reason(for: field), reason != "ai_output" {
                throw APIError.invalid("ai_config.prompt: placeholder '\(placeholder)' at position \(position) names a field that is \(reason == "excluded" ? "in excluded_fields" : "sensitive") and never sent to the model")
            }
            if exclusion.excludes(path: path) {
                throw APIError.invalid("ai_config.prompt: placeholder '\(placeholder)' at position \(position) names a key that is excluded or sensitive and never sent to the model")
            }
        }
    }

    /// A path of AI fields leading back to `start` through explicit placeholders, if any.
    static func dependencyCycle(from start: PipelineField, among fields: [PipelineField]) -> [String]? {
        let aiFields = Dictionary(fields.filter(\.isAIGenerated).map { ($0.slug, $0) }, uniquingKeysWith: { _, last in last })
        func dependencies(_ field: PipelineField) -> [String] { TriggerPlanner.dependencies(of: field, in: fields) }
        var path: [String] = [start.slug]
        var visited = Set<String>()
        func walk(_ field: PipelineField) -> Bool {
            for next in dependencies(field) {
                if next == start.slug { path.append(next); return true }
                guard visited.insert(next).inserted, let nextField = aiFields[next] else { continue }
                path.append(next)
                if walk(nextField) { return true }
                path.removeLast()
            }
            return false
        }
        return walk(start) ? path : nil
    }
}
