@testable import API
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import Testing

/// Every message a field configuration can be refused with, one row each: the operator reads
/// these in a 422, so each must name what is wrong and, for a placeholder, where.
@Suite("field validation messages")
struct FieldValidationTests {
    static func field(_ slug: String, _ type: FieldType = .text, prompt: String? = nil) -> PipelineField {
        PipelineField(id: FieldID(1), slug: slug, name: slug, type: type, position: 0, aiConfig: prompt.map { AIFieldConfig(prompt: $0) })
    }

    /// Name, customer SSN, billing (JSON), and two AI fields where `a` already names `c` (as if
    /// `c` had existed once), so a new `c` naming `b` closes a cycle through other AI fields.
    static let existing = [
        field("name"), field("ssn"), field("billing", .json), field("notes", .textarea),
        field("a", .aiGenerated, prompt: "About {c}"), field("b", .aiGenerated, prompt: "Given {a}"),
    ]

    struct Row: Sendable, CustomTestStringConvertible {
        let slug: String
        let fieldType: String
        let config: JSONValue?
        let message: String
        var testDescription: String { self.message }
    }

    static let rows: [Row] = [
        Row(slug: "Bad Slug", fieldType: "text", config: nil, message: "slug must be lower-case letters"),
        Row(slug: "x", fieldType: "vector", config: nil, message: "field_type 'vector' is unknown"),
        Row(slug: "x", fieldType: "text", config: ["prompt": "Hi"], message: "ai_config is only allowed on ai_generated fields"),
        Row(slug: "x", fieldType: "ai_generated", config: nil, message: "an ai_generated field needs an ai_config with a prompt"),
        Row(slug: "x", fieldType: "ai_generated", config: ["prompt": "Hi", "temperature": 5], message: "ai_config.temperature must be between 0 and 2"),
        Row(slug: "x", fieldType: "ai_generated", config: ["prompt": "Hi {name"], message: "ai_config.prompt: unclosed placeholder: '{' at position 3"),
        Row(slug: "x", fieldType: "ai_generated", config: ["prompt": "Hi {nmae}"], message: "placeholder '{nmae}' at position 3 names no field of this pipeline"),
        Row(slug: "x", fieldType: "ai_generated", config: ["prompt": "Again {x}"], message: "placeholder '{x}' at position 6 makes the field depend on itself"),
        Row(slug: "x", fieldType: "ai_generated", config: ["prompt": "{ssn}"], message: "placeholder '{ssn}' at position 0 names a field that is sensitive"),
        Row(slug: "x", fieldType: "ai_generated", config: ["prompt": "See {notes}", "excluded_fields": ["Notes"]], message: "placeholder '{notes}' at position 4 names a field that is in excluded_fields"),
        Row(slug: "x", fieldType: "ai_generated", config: ["prompt": "{billing.card_number}"], message: "placeholder '{billing.card_number}' at position 0 names a key that is excluded or sensitive"),
        Row(slug: "x", fieldType: "ai_generated", config: ["prompt": "{billing.zip}", "excluded_fields": ["billing.zip"]], message: "placeholder '{billing.zip}' at position 0 names a key that is excluded"),
        Row(slug: "x", fieldType: "ai_generated", config: ["prompt": "{name}", "trigger_fields": ["stage"]], message: "ai_config.trigger_fields names 'stage', which is no field of this pipeline"),
        Row(slug: "c", fieldType: "ai_generated", config: ["prompt": "Given {b}"], message: "placeholder '{b}' at position 6 makes the AI fields depend on each other in a cycle: c → b → a → c"),
        Row(slug: "x", fieldType: "ai_generated", config: ["prompt": "{name}", "model": "gpt-9-ultra"], message: "ai_config.model 'gpt-9-ultra' has no price"),
    ]

    @Test("each bad configuration is refused with 422 and a message naming the problem", arguments: Self.rows)
    func refused(row: Row) {
        do {
            _ = try FieldValidator.validate(name: "X", slug: row.slug, fieldType: row.fieldType, aiConfig: row.config, existing: Self.existing, tenantSensitiveNames: [], models: .builtIn, defaultModel: "gpt-4o-mini")
            Issue.record("accepted: \(row.message)")
        } catch {
            #expect(error.description.hasPrefix("422 invalid:"), "\(error)")
            #expect(error.message.contains(row.message), "\(error.message)")
        }
    }

    @Test("a tenant's sensitive name refuses a placeholder the defaults allow")
    func tenantNames() {
        #expect(throws: APIError.self) {
            try FieldValidator.validate(name: "X", slug: "x", fieldType: "ai_generated", aiConfig: ["prompt": "{notes}"], existing: Self.existing, tenantSensitiveNames: ["notes"], models: .builtIn, defaultModel: "gpt-4o-mini")
        }
    }

    @Test("a good configuration passes, other AI fields may be named, and defaults are filled in")
    func accepted() throws {
        let (type, config) = try FieldValidator.validate(
            name: "Summary", slug: "summary", fieldType: "ai_generated", aiConfig: ["prompt": "{name} {billing.city} {b} {*}"], existing: Self.existing, tenantSensitiveNames: [], models: .builtIn, defaultModel: "gpt-4o-mini")
        #expect(type == .aiGenerated)
        #expect(config?.maxTokens == AIFieldConfig(prompt: "x").maxTokens)
    }
}
