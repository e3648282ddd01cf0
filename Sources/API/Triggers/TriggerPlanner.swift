public import OneoWire
public import OneoPrompt
public import OneoStore
public import OneoCore

/// Decides which AI fields a record change must regenerate. Pure: no I/O, so every rule is
/// unit-tested. An AI field with `trigger_fields` reacts to those; without, to every field its
/// prompt can see (the fields it names, and for `{*}` every visible field).
public enum TriggerPlanner {
    /// The AI fields a change regenerates: those it triggers, and then those whose templates name
    /// a regenerated AI field (they run after it, on its new value: see `dependencies`).
    public static func fieldsToRegenerate(fields: [PipelineField], changed: Set<String>, tenantSensitiveNames: [String] = []) -> [PipelineField] {
        guard !changed.isEmpty else { return [] }
        var regenerated = Set<String>()
        for field in fields {
            guard let config = field.aiConfig, config.autoRegenerate else { continue }
            if !self.triggers(of: config, in: fields, tenantSensitiveNames: tenantSensitiveNames).isDisjoint(with: changed) {
                regenerated.insert(field.slug)
            }
        }
        // Each pass adds at least one field or ends: at most as many passes as fields.
        var grew = !regenerated.isEmpty
        while grew {
            grew = false
            for field in fields where field.aiConfig?.autoRegenerate == true && !regenerated.contains(field.slug) {
                if !Set(self.dependencies(of: field, in: fields)).isDisjoint(with: regenerated) {
                    regenerated.insert(field.slug)
                    grew = true
                }
            }
        }
        return fields.filter { regenerated.contains($0.slug) }
    }

    /// The other AI fields of the pipeline that a field's template names explicitly (`{slug}`):
    /// its job waits for their jobs on the same record and reads their fresh values. `{*}` makes
    /// no dependency (two `{*}` fields would wait for each other); cycles are refused when a
    /// field is configured.
    public static func dependencies(of field: PipelineField, in fields: [PipelineField]) -> [String] {
        guard let prompt = field.aiConfig?.prompt, let template = try? PromptTemplate(parsing: prompt) else { return [] }
        let aiSlugs = Set(fields.filter(\.isAIGenerated).map(\.slug))
        var seen = Set<String>()
        return template.referencedFields.filter { $0 != field.slug && aiSlugs.contains($0) && seen.insert($0).inserted }
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
