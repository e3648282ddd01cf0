public import OneoWire
public import OneoPrompt
public import OneoStore
public import OneoCore

/// Decides which AI fields a record change must regenerate. Pure: no I/O, so every rule is
/// unit-tested. An AI field with `trigger_fields` reacts to those; without, to every field its
/// prompt can see (the fields it names, and for `{*}` every visible field).
public enum TriggerPlanner {
    public static func fieldsToRegenerate(fields: [PipelineField], changed: Set<String>, tenantSensitiveNames: [String] = []) -> [PipelineField] {
        guard !changed.isEmpty else { return [] }
        return fields.filter { field in
            guard let config = field.aiConfig, config.autoRegenerate else { return false }
            return !self.triggers(of: config, in: fields, tenantSensitiveNames: tenantSensitiveNames).isDisjoint(with: changed)
        }
    }

    /// The slugs whose change regenerates a field with this config.
    public static func triggers(of config: AIFieldConfig, in fields: [PipelineField], tenantSensitiveNames: [String] = []) -> Set<String> {
        if !config.triggerFields.isEmpty { return Set(config.triggerFields) }
        // A template that no longer parses triggers nothing; it was validated when configured.
        guard let template = try? PromptTemplate(parsing: config.prompt) else { return [] }
        var slugs = Set(template.referencedFields)
        if template.usesAllFields {
            let exclusion = FieldExclusion(excludedFields: config.excludedFields, tenantSensitiveNames: tenantSensitiveNames)
            slugs.formUnion(exclusion.visibleFields(of: fields).map(\.slug))
        }
        return slugs
    }

    /// The top-level keys whose values differ between two versions of a record's data.
    public static func changedKeys(before: [String: JSONValue], after: [String: JSONValue]) -> Set<String> {
        Set(before.keys).union(after.keys).filter { before[$0] ?? .null != after[$0] ?? .null }
    }
}
