import OneoCore

/// Checks a new field before it is stored, so that a bad prompt fails with 422 when configured
/// rather than as a failed job later.
enum FieldValidator {
    static func validate(
        name: String,
        slug: String,
        fieldType: String,
        aiConfig: JSONValue?,
        existing: [PipelineField]
    ) throws(APIError) -> (FieldType, AIFieldConfig?) {
        guard PipelineField.isValidSlug(slug) else {
            throw APIError.invalid("slug must be lower-case letters, digits and '_', starting with a letter (at most 63)")
        }
        guard !name.isEmpty, name.count <= 200 else { throw APIError.invalid("name must be 1 to 200 characters") }
        guard let type = FieldType(rawValue: fieldType) else {
            throw APIError.invalid("field_type '\(fieldType)' is unknown (known: \(FieldType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard type == .aiGenerated else {
            guard aiConfig == nil || aiConfig == .null else { throw APIError.invalid("ai_config is only allowed on ai_generated fields") }
            return (type, nil)
        }
        guard let aiConfig, !aiConfig.isNull else { throw APIError.invalid("an ai_generated field needs an ai_config with a prompt") }
        let config: AIFieldConfig
        do {
            config = try AIFieldConfig(validating: aiConfig)
        } catch {
            throw APIError.invalid(error.description)
        }
        let template: PromptTemplate
        do {
            template = try PromptTemplate(parsing: config.prompt)
        } catch {
            throw APIError.invalid("ai_config.prompt: \(error.description)")
        }
        let known = Set(existing.map(\.slug))
        for segment in template.segments {
            guard case .field(let path, let position) = segment, let head = path.first else { continue }
            guard known.contains(head) else {
                throw APIError.invalid("ai_config.prompt: placeholder '{\(path.joined(separator: "."))}' at position \(position) names no field of this pipeline")
            }
            guard head != slug else {
                throw APIError.invalid("ai_config.prompt: placeholder '{\(head)}' at position \(position) makes the field depend on itself")
            }
        }
        for trigger in config.triggerFields where !known.contains(trigger) {
            throw APIError.invalid("ai_config.trigger_fields names '\(trigger)', which is no field of this pipeline")
        }
        return (type, config)
    }
}
