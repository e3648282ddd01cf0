import OneoPrompt
import OneoWire
import Processor
import Testing

/// The processor's first step without processes or a database: a job order and the field list
/// the queue manager sent are all it renders from, and what it cannot render it refuses with a
/// typed code.
@Suite("processor job steps")
struct JobStepTests {
    static let fields = PipelineFields(pipeline: PipelineID(1), version: 3, fields: [
        PipelineField(id: FieldID(1), slug: "name", name: "Name", type: .text, position: 0, aiConfig: nil),
        PipelineField(id: FieldID(2), slug: "api_key", name: "API key", type: .text, position: 1, aiConfig: nil),
        PipelineField(id: FieldID(3), slug: "summary", name: "Summary", type: .aiGenerated, position: 2, aiConfig: nil),
    ])

    /// Test data, not a key: a made-up value under a key name the guard withholds.
    static let madeUpKey = "TEST-ONLY-not-a-real-key-0000"

    static func order(prompt: String = "Summarize {name}: {*}", data: [String: JSONValue]? = ["name": "Jane", "api_key": .string(madeUpKey)], fieldsVersion: Int64 = 3) -> JobOrder {
        JobOrder(
            job: JobID(7), attempt: 1, maxAttempts: 3, pipeline: PipelineID(1), pipelineName: "Leads", fieldsVersion: fieldsVersion,
            record: RecordID(9), fieldName: "summary", model: "gpt-4o-mini", config: AIFieldConfig(prompt: prompt), triggeredBy: "api",
            recordData: data, tenantSensitiveNames: []
        )
    }

    @Test("a job renders from its order and the field list: fenced data, sensitive keys withheld, the audit counted")
    func renders() throws {
        let context = PromptContext(tenantName: "Acme")
        context.receive(Self.fields)
        let prepared = try context.prepare(Self.order()).get()
        #expect(prepared.prompt.contains("<data>Jane</data>"))
        #expect(prepared.prompt.contains("<record_data>"))
        #expect(!prepared.prompt.contains(Self.madeUpKey))
        #expect(prepared.audit["excluded_fields"]?.integerValue == 1)
    }

    @Test("a missing record, a field list older than the job's, and a broken template are refused with their codes")
    func refusals() {
        let context = PromptContext(tenantName: "Acme")
        #expect(context.prepare(Self.order()).failureCode == .internal, "no field list was sent")
        context.receive(Self.fields)
        #expect(context.prepare(Self.order(fieldsVersion: 4)).failureCode == .internal, "the list is older than the job")
        #expect(context.prepare(Self.order(data: nil)).failureCode == .recordMissing)
        #expect(context.prepare(Self.order(prompt: "Summarize {name")).failureCode == .badTemplate)
        // An older list arriving late does not replace the newer one.
        context.receive(PipelineFields(pipeline: PipelineID(1), version: 2, fields: []))
        #expect((try? context.prepare(Self.order()).get()) != nil)
    }
}

extension Result where Failure == PromptContext.Refusal {
    var failureCode: JobFailureCode? {
        if case .failure(let refusal) = self { return refusal.code }
        return nil
    }
}
