import API
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import Testing

@Suite("which AI fields a change regenerates")
struct TriggerPlannerTests {
    static func fields(_ config: AIFieldConfig) -> [PipelineField] {
        [
            PipelineField(id: FieldID(1), slug: "name", name: "Name", type: .text, position: 0, aiConfig: nil),
            PipelineField(id: FieldID(2), slug: "company", name: "Company", type: .text, position: 1, aiConfig: nil),
            PipelineField(id: FieldID(3), slug: "ssn", name: "SSN", type: .text, position: 2, aiConfig: nil),
            PipelineField(id: FieldID(4), slug: "summary", name: "Summary", type: .aiGenerated, position: 3, aiConfig: config),
        ]
    }

    static func config(_ prompt: String, triggers: [String] = [], excluded: [String] = [], auto: Bool = true) -> AIFieldConfig {
        var config = AIFieldConfig(prompt: prompt)
        config.triggerFields = triggers
        config.excludedFields = excluded
        config.autoRegenerate = auto
        return config
    }

    @Test("without trigger_fields, any field the prompt references triggers", arguments: [
        (["name"], true), (["company"], false), (["ssn"], false), ([], false),
    ])
    func referencedFieldsTrigger(changed: [String], triggers: Bool) {
        let planned = TriggerPlanner.fieldsToRegenerate(fields: Self.fields(Self.config("About {name}")), changed: Set(changed))
        #expect(planned.map(\.slug) == (triggers ? ["summary"] : []))
    }

    @Test("{*} triggers on every visible field but not on excluded ones")
    func allFieldsTrigger() {
        let fields = Self.fields(Self.config("{*}", excluded: ["ssn"]))
        #expect(TriggerPlanner.fieldsToRegenerate(fields: fields, changed: ["company"]).count == 1)
        #expect(TriggerPlanner.fieldsToRegenerate(fields: fields, changed: ["ssn"]).isEmpty)
    }

    @Test("trigger_fields, when given, are the only triggers")
    func explicitTriggers() {
        let fields = Self.fields(Self.config("{*}", triggers: ["company"]))
        #expect(TriggerPlanner.fieldsToRegenerate(fields: fields, changed: ["name"]).isEmpty)
        #expect(TriggerPlanner.fieldsToRegenerate(fields: fields, changed: ["company"]).count == 1)
    }

    @Test("auto_regenerate false never triggers")
    func autoRegenerateOff() {
        let fields = Self.fields(Self.config("{*}", auto: false))
        #expect(TriggerPlanner.fieldsToRegenerate(fields: fields, changed: ["name", "company"]).isEmpty)
    }

    @Test("a change is a key whose value differs, including one set to or from null")
    func changedKeys() {
        let changed = TriggerPlanner.changedKeys(before: ["a": 1, "b": "x", "c": "y"], after: ["a": 1, "b": "z", "c": .null, "d": true])
        #expect(changed == ["b", "c", "d"])
    }
}
