import Foundation
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import Testing

/// The demo's 20 records through the demo's template, byte for byte. A change in formatting,
/// field order or exclusion shows here first; when it is meant, regenerate the file with
/// `ONEO_UPDATE_GOLDEN=1 swift test --filter DemoGoldenTests` and review the diff.
@Suite("golden prompts of the demo")
struct DemoGoldenTests {
    static let fields: [PipelineField] = [("Name", "name"), ("Company", "company"), ("Industry", "industry"), ("Email", "email"), ("SSN", "ssn")]
        .enumerated().map { PipelineField(id: FieldID(Int64($0.offset + 1)), slug: $0.element.1, name: $0.element.0, type: .text, position: $0.offset, aiConfig: nil) }
        + [PipelineField(id: FieldID(6), slug: "ai_summary", name: "AI Summary", type: .aiGenerated, position: 5, aiConfig: AIFieldConfig(prompt: "x"))]

    /// The records `scripts/demo.sh` inserts.
    static var records: [[String: JSONValue]] {
        let people = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra",
                      "Barbara Liskov", "Donald Knuth", "Margaret Hamilton", "Ken Thompson", "Frances Allen",
                      "John Backus", "Radia Perlman", "Leslie Lamport", "Shafi Goldwasser", "Tony Hoare",
                      "Hedy Lamarr", "Dennis Ritchie", "Adele Goldberg", "Niklaus Wirth", "Sophie Wilson"]
        let companies = [("Initech", "Software"), ("Globex", "Energy"), ("Umbrella", "Pharma"), ("Hooli", "Internet"), ("Stark Industries", "Manufacturing")]
        return people.enumerated().map { index, name in
            let (company, industry) = companies[index % companies.count]
            return [
                "name": .string(name), "company": .string(company), "industry": .string(industry),
                "email": .string(name.lowercased().replacingOccurrences(of: " ", with: ".") + "@" + company.lowercased().replacingOccurrences(of: " ", with: "") + ".example"),
                "ssn": .string(String(format: "900-%02d-%04d", index + 10, 1000 + index)),
            ]
        }
    }

    @Test("the demo's prompts match the golden file, with the SSN nowhere")
    func golden() throws {
        var config = AIFieldConfig(prompt: "Create a brief summary of this customer: {*}")
        config.excludedFields = ["ssn"]
        let template = try PromptTemplate(parsing: config.prompt)
        let renderer = PromptRenderer(fields: Self.fields, config: config)
        let rendered = Self.records.enumerated().map { index, data in
            renderer.render(template, data: data, metadata: .init(recordID: RecordID(Int64(index + 1)), pipelineName: "Leads", tenantName: "Acme Corp", currentUser: "api")).prompt
        }
        let text = rendered.enumerated().map { "--- record \($0.offset + 1)\n\($0.element)\n" }.joined()
        for data in Self.records { #expect(!text.contains(data["ssn"]!.stringValue!)) }
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/demo-prompts.txt")
        if ProcessInfo.processInfo.environment["ONEO_UPDATE_GOLDEN"] == "1" {
            try text.write(to: source, atomically: true, encoding: .utf8)
            Issue.record("golden file rewritten at \(source.path); review it and run again without ONEO_UPDATE_GOLDEN")
            return
        }
        let url = try #require(Bundle.module.url(forResource: "demo-prompts", withExtension: "txt", subdirectory: "Golden"))
        let golden = try String(contentsOf: url, encoding: .utf8)
        #expect(text == golden)
    }
}
