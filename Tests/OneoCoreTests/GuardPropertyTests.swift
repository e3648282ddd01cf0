import Foundation
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PropertyBased
import Testing

/// Random records and templates: the engine never crashes, never lets an excluded or detected
/// value through, whatever its nesting or case, and always renders the same bytes.
@Suite("prompt guard properties")
struct GuardPropertyTests {
    /// Values that must never reach a prompt, each unmistakable in the output. Made-up test data:
    /// no real card, account or key (AKIAIOSFODNN7EXAMPLE is the example key of AWS's own
    /// documentation; the JWT signs nothing).
    static let secrets = [
        "4111 1111 1111 1111", "123-45-6789", "GB82 WEST 1234 5698 7654 32", "sk-live-ABCDEFGHIJKLMNOPQRSTUV0123",
        "AKIAIOSFODNN7EXAMPLE", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVlLTEyMw",
    ]
    static let plainWords = ["Acme", "Oslo", "renewal", "Q3", "follow up", "42", "ACME corp", "x"]
    static let sensitiveSlugs = ["ssn", "api_key", "card_number", "iban", "password", "private_notes", "client_secret"]
    static let plainSlugs = ["name", "company", "notes", "region", "stage", "owner"]

    static let fields: [PipelineField] = (plainSlugs + sensitiveSlugs).enumerated().map { index, slug in
        PipelineField(id: FieldID(Int64(index + 1)), slug: slug, name: slug.replacingOccurrences(of: "_", with: " ").capitalized, type: .text, position: index, aiConfig: nil)
    }

    /// A marker value unique to a sensitive field, so its presence in the output is detectable.
    static func marker(_ slug: String) -> String { "MARK\(slug.uppercased())VALUE" }

    static let record = Gen.int(in: 0...1_000).array(of: 6).map { picks -> [String: JSONValue] in
        var data: [String: JSONValue] = [:]
        for (index, slug) in Self.plainSlugs.enumerated() {
            let pick = picks[index]
            switch pick % 5 {
            case 0: data[slug] = .string(Self.secrets[pick % Self.secrets.count])
            case 1: data[slug] = ["nested": .string(Self.plainWords[pick % Self.plainWords.count]), "card_number": .string(Self.marker("card_number")), "IBAN": .string(Self.marker("iban"))]
            case 2: data[slug] = [.string(Self.plainWords[pick % Self.plainWords.count]), ["Password": .string(Self.marker("password"))]]
            case 3: data[slug] = .null
            default: data[slug] = .string(Self.plainWords[pick % Self.plainWords.count] + " " + Self.secrets[(pick / 5) % Self.secrets.count])
            }
        }
        for slug in Self.sensitiveSlugs { data[slug] = .string(Self.marker(slug)) }
        return data
    }

    static let template = Gen.int(in: 0...30).array(of: 1...8).map { picks -> String in
        picks.map { pick -> String in
            switch pick % 6 {
            case 0: return "{*}"
            case 1: return "{\(Self.plainSlugs[pick % Self.plainSlugs.count])}"
            case 2: return "{\(Self.plainSlugs[pick % Self.plainSlugs.count]).nested}"
            case 3: return "{\(Self.plainSlugs[pick % Self.plainSlugs.count]).card_number}"
            case 4: return " {{literal}} #{record_id} "
            default: return Self.plainWords[pick % Self.plainWords.count]
            }
        }.joined(separator: " ")
    }

    func render(_ source: String, _ data: [String: JSONValue]) throws -> PromptRenderer.Rendered {
        let renderer = PromptRenderer(fields: Self.fields, exclusion: FieldExclusion(excludedFields: []))
        return renderer.render(try PromptTemplate(parsing: source), data: data, metadata: .init(recordID: RecordID(1), pipelineName: "Leads", tenantName: "Acme", currentUser: nil))
    }

    @Test("no sensitive field, nested sensitive key or detected value ever appears in a prompt")
    func nothingLeaks() async {
        await propertyCheck(count: 300, input: Self.template, Self.record) { source, data in
            let rendered = try? self.render(source, data)
            #expect(rendered != nil, "generated templates always parse")
            guard let prompt = rendered?.prompt else { return }
            for slug in Self.sensitiveSlugs { #expect(!prompt.contains(Self.marker(slug)), "\(slug) leaked") }
            for secret in Self.secrets { #expect(!prompt.contains(secret), "a detectable secret leaked") }
        }
    }

    @Test("rendering is deterministic: the same record and template give the same bytes")
    func deterministic() async {
        await propertyCheck(count: 200, input: Self.template, Self.record) { source, data in
            let first = try? self.render(source, data)
            let second = try? self.render(source, data)
            #expect(first != nil && first == second)
        }
    }

    @Test("the byte matcher of sensitive names agrees with the word definition on random names")
    func sensitiveNameMatcher() async {
        let pieces = ["api", "KEY", "_", "-", " ", "card", "number", "credit", "x", "ssn", "Token", "tokens", "9", "é", "secret", "ary", "."]
        let names = Gen.int(in: 0...(pieces.count - 1)).array(of: 0...7).map { $0.map { pieces[$0] }.joined() }
        let exclusion = FieldExclusion(excludedFields: [])
        await propertyCheck(count: 500, input: names) { name in
            #expect(exclusion.isSensitiveName(name) == FieldExclusionTests.referenceVerdict(name, sensitive: FieldExclusion.defaultSensitiveNames), "\(name)")
        }
    }

    @Test("arbitrary text never crashes the parser or the renderer")
    func arbitraryText() async {
        await propertyCheck(count: 500, input: Gen.ascii.string(of: 0...60), Self.record) { source, data in
            if let template = try? PromptTemplate(parsing: source) {
                let renderer = PromptRenderer(fields: Self.fields, exclusion: FieldExclusion(excludedFields: []))
                _ = renderer.render(template, data: data, metadata: .init(recordID: nil, pipelineName: "", tenantName: "", currentUser: nil))
            }
        }
    }
}
