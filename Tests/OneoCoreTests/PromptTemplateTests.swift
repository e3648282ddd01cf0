import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import Testing

@Suite("prompt templates")
struct PromptTemplateTests {
    @Test("placeholders parse into segments with their positions", arguments: [
        ("Hi {name}", [PromptTemplate.Segment.literal("Hi "), .field(path: ["name"], position: 3)]),
        ("{*}", [.allFields(position: 0)]),
        ("{billing.city}!", [.field(path: ["billing", "city"], position: 0), .literal("!")]),
        ("#{record_id} in {pipeline_name}", [.literal("#"), .builtin(.recordID, position: 1), .literal(" in "), .builtin(.pipelineName, position: 16)]),
        ("{{literal}} braces", [.literal("{literal} braces")]),
        ("", []),
    ])
    func parses(source: String, segments: [PromptTemplate.Segment]) throws {
        #expect(try PromptTemplate(parsing: source).segments == segments)
    }

    @Test("malformed templates are rejected with the position of the problem", arguments: [
        ("Hi {name", TemplateError(.unclosedPlaceholder, position: 3)),
        ("Hi name}", TemplateError(.unmatchedClosingBrace, position: 7)),
        ("{a {b}", TemplateError(.unclosedPlaceholder, position: 0)),
        ("x {}", TemplateError(.invalidPlaceholder(""), position: 2)),
        ("x {a..b}", TemplateError(.invalidPlaceholder("a..b"), position: 2)),
        ("x {1abc}", TemplateError(.invalidPlaceholder("1abc"), position: 2)),
    ])
    func rejects(source: String, expected: TemplateError) {
        #expect(throws: expected) { try PromptTemplate(parsing: source) }
    }

    @Test("referenced fields are the top-level slugs named explicitly, once each")
    func referencedFields() throws {
        let template = try PromptTemplate(parsing: "{name} at {company} in {billing.city}, again {name}: {*} #{record_id}")
        #expect(template.referencedFields == ["name", "company", "billing"])
        #expect(template.usesAllFields)
    }
}

@Suite("prompt rendering")
struct PromptRendererTests {
    static let fields = [
        PipelineField(id: FieldID(1), slug: "name", name: "Name", type: .text, position: 0, aiConfig: nil),
        PipelineField(id: FieldID(2), slug: "ssn", name: "SSN", type: .text, position: 1, aiConfig: nil),
        PipelineField(id: FieldID(3), slug: "deal", name: "Deal size", type: .number, position: 2, aiConfig: nil),
        PipelineField(id: FieldID(4), slug: "billing", name: "Billing", type: .json, position: 3, aiConfig: nil),
        PipelineField(id: FieldID(5), slug: "summary", name: "Summary", type: .aiGenerated, position: 4, aiConfig: AIFieldConfig(prompt: "{*}")),
    ]
    static let data: [String: JSONValue] = [
        "name": "Jane", "ssn": "123-45-6789", "deal": .double(1500), "billing": ["city": "Oslo", "zip": "0150"], "summary": "old output",
    ]
    static let metadata = PromptRenderer.Metadata(recordID: RecordID(7), pipelineName: "Leads", tenantName: "Acme", currentUser: "ops")

    func render(_ source: String, excluded: [String] = ["ssn"], data: [String: JSONValue] = Self.data) throws -> PromptRenderer.Rendered {
        try PromptRenderer(fields: Self.fields, exclusion: FieldExclusion(excludedFields: excluded)).render(PromptTemplate(parsing: source), data: data, metadata: Self.metadata)
    }

    @Test("{*} lists visible input fields in pipeline order, without excluded or AI fields")
    func allFields() throws {
        let rendered = try self.render("Customer:\n{*}")
        #expect(rendered.prompt == "Customer:\n\n<record_data>\nName: Jane\nDeal size: 1500\nBilling: {\"city\":\"Oslo\",\"zip\":\"0150\"}\n</record_data>\n")
        #expect(rendered.excludedFieldCount == 1)
    }

    @Test("exclusion matches slug or label, case-insensitively, and covers explicit placeholders")
    func exclusionByLabel() throws {
        let rendered = try self.render("{ssn} {*}", excluded: ["ssN", "deal size"])
        #expect(!rendered.prompt.contains("123-45-6789"))
        #expect(!rendered.prompt.contains("1500"))
        #expect(rendered.prompt.hasPrefix(PromptRenderer.emptyMarker))
        #expect(rendered.excludedFieldCount == 2)
    }

    @Test("fields, nested paths and built-ins render; missing values render as the empty marker")
    func placeholders() throws {
        let rendered = try self.render("{name}/{billing.city}/{billing.country}/{record_id}/{pipeline_name}/{tenant_name}/{current_user}", data: Self.data)
        #expect(rendered.prompt == "<data>Jane</data>/<data>Oslo</data>/(empty)/7/Leads/Acme/ops")
        let empty = try self.render("{name}", data: ["name": .null])
        #expect(empty.prompt == "(empty)")
    }

    @Test("{workflow_data} renders a workflow's data as compact JSON, without its sensitive keys; absent, the empty marker")
    func workflowData() throws {
        let template = try PromptTemplate(parsing: "Run: {workflow_data}")
        let renderer = PromptRenderer(fields: Self.fields, exclusion: FieldExclusion(excludedFields: []))
        var metadata = Self.metadata
        metadata.workflowData = ["step": "qualify", "api_key": "k", "ids": [3, 1]]
        let rendered = renderer.render(template, data: Self.data, metadata: metadata)
        #expect(rendered.prompt == #"Run: <data>{"ids":[3,1],"step":"qualify"}</data>"#)
        #expect(rendered.excludedKeys == 1)
        #expect(renderer.render(template, data: Self.data, metadata: Self.metadata).prompt == "Run: (empty)")
    }

    @Test("the same record always renders the same bytes")
    func deterministic() throws {
        let first = try self.render("{*}").prompt
        for _ in 0..<20 { #expect(try self.render("{*}").prompt == first) }
    }

    @Test("{*} drops fields from its end to stay within the prompt limit, and says which")
    func promptLimit() throws {
        let renderer = PromptRenderer(fields: Self.fields, exclusion: FieldExclusion(excludedFields: ["ssn"]), limits: .init(fieldCharacters: 2_000, promptCharacters: 72))
        let rendered = renderer.render(try PromptTemplate(parsing: "Lead: {*}"), data: Self.data, metadata: Self.metadata)
        #expect(rendered.prompt == "Lead: \n<record_data>\nName: Jane\nDeal size: 1500\n</record_data>\n")
        #expect(rendered.reachedLimit)
        #expect(rendered.droppedFields == ["billing"])
        #expect(rendered.audit["dropped_fields"] == ["billing"])
    }

    // Test data: AKIAIOSFODNN7EXAMPLE is AWS's documented example key, 4111… a test card number.
    @Test("detectors run over the final prompt: a secret in an ordinary field is redacted and counted")
    func detectorsOnValues() throws {
        var data = Self.data
        data["name"] = "Jane, card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE"
        let rendered = try self.render("{name}", data: data)
        #expect(rendered.prompt == "<data>Jane, card [REDACTED:card], key [REDACTED:aws_key]</data>")
        #expect(rendered.redactions == [.card: 1, .awsKey: 1])
        #expect(rendered.audit["redactions"] == ["card": 1, "aws_key": 1])
    }

    @Test("a dotted path to a sensitive key renders as the empty marker; other AI outputs may be named")
    func nestedAndDependencies() throws {
        var data = Self.data
        data["billing"] = ["city": "Oslo", "card_number": "4111111111111111"]
        let rendered = try self.render("{billing.card_number} {billing} {summary}", data: data)
        #expect(rendered.prompt == "(empty) <data>{\"city\":\"Oslo\"}</data> <ai_output>old output</ai_output>")
        #expect(rendered.excludedKeys == 1)
    }

    @Test("withheld nested keys are counted for the values a prompt shows, each field once")
    func withheldKeysAudit() throws {
        // Test data: 4111… is the standard test card number, 123 a made-up CVV.
        var data = Self.data
        data["billing"] = ["city": "Oslo", "card_number": "4111111111111111", "cvv": "123"]
        #expect(try self.render("{billing} and again {billing}", data: data).excludedKeys == 2)
        #expect(try self.render("{billing.city}", data: data).excludedKeys == 0, "nothing of billing but its city is shown")
    }
}
