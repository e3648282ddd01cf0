import Foundation
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore

/// Render + guard on values written to hurt: for each matcher's alphabet (and the fence's
/// escapes, and JSON held in a string), a record whose one text field holds a run of it at
/// 1 KB, 64 KB and 1 MB, against an ordinary record of CRM prose of the same size. Reports
/// nanoseconds of the rendering thread's CPU per byte of the value; linear time shows as a flat
/// figure across sizes, and the worst input should stay within 3× the ordinary one at each size.
/// Every detector is on, e-mail and phone included, with the ceilings of `PromptLimits`.
public struct AdversarialBenchmark: Sendable {
    public struct Row: Sendable, Encodable {
        public var input: String
        public var bytes: Int
        public var ns_per_byte: Double
        /// This input's ns/byte over the ordinary record's at the same size.
        public var ratio: Double
    }

    public struct Report: Sendable, Encodable {
        public var rows: [Row]
        public var worst_ratio: Double
        public var worst_input: String

        public var table: String {
            var lines = ["input                          1 KB ns/B      64 KB ns/B      1 MB ns/B    (× ordinary)"]
            var seen: [String] = []
            for row in self.rows where !seen.contains(row.input) { seen.append(row.input) }
            for input in seen {
                let cells = self.rows.filter { $0.input == input }.map { String(format: "%7.2f (%4.2f×)", $0.ns_per_byte, $0.ratio) }
                lines.append(input.padding(toLength: 30, withPad: " ", startingAt: 0) + " " + cells.joined(separator: " "))
            }
            lines.append(String(format: "worst: %@ at %.2f× the ordinary record", self.worst_input, self.worst_ratio))
            return lines.joined(separator: "\n")
        }
    }

    public static let sizes = [1 << 10, 64 << 10, 1 << 20]

    /// The inputs, by name: a unit repeated to the size. Test data only: fragments of secret
    /// formats (prefixes, a card number that fails the Luhn check), none of them a secret.
    public static let inputs: [(name: String, unit: String)] = [
        ("jwt: eyJ-", "eyJ-"),
        ("jwt: eyJa.", "eyJa."),
        ("email: a.", "a."),
        ("email: a@a.", "a@a."),
        ("phone: 1 ", "1 "),
        ("card: 11 ", "11 "),
        ("card: Luhn-failing 16 digits", "4111111111111112 "),
        ("ssn: 123-45-", "123-45-"),
        ("ssn: ssn 123 45 678", "ssn 123 45 678 "),
        ("iban: DE89 ", "DE89 "),
        ("api key: sk-", "sk-"),
        ("api key: ghp_", "ghp_"),
        ("aws: AKIA", "AKIA"),
        ("pem: -----BEGIN ", "-----BEGIN "),
        ("fence: line breaks", "\n"),
        ("fence: <data>", "<data>"),
        ("unicode: ：sk-x", "：sk-x"),
    ]

    public let minimumSeconds: Double
    public let sizes: [Int]

    public init(minimumSeconds: Double = 0.15, sizes: [Int] = Self.sizes) {
        self.minimumSeconds = minimumSeconds
        self.sizes = sizes
    }

    static let fields: [PipelineField] = [
        PipelineField(id: FieldID(1), slug: "name", name: "Name", type: .text, position: 0, aiConfig: nil),
        PipelineField(id: FieldID(2), slug: "company", name: "Company", type: .text, position: 1, aiConfig: nil),
        PipelineField(id: FieldID(3), slug: "notes", name: "Notes", type: .textarea, position: 2, aiConfig: nil),
    ]

    /// Ordinary CRM prose: names, dates, amounts, an address, words of every length.
    static let prose = "Met Jane Doe at the Oslo summit on 2026-03-14 about the enterprise tier; budget USD 12,500 for 40 seats, "
        + "procurement wants SSO and a security review before Q3. Their office is at 221B Baker Street, London. "
        + "Call back next Tuesday at 10:30; the renewal of contract 2025-117 is due in June. "

    static func repeated(_ unit: String, to bytes: Int) -> String {
        var text = String(repeating: unit, count: bytes / unit.utf8.count + 1)
        while text.utf8.count > bytes { text.removeLast() }
        return text
    }

    /// A string value holding JSON whose keys the guard must withhold: parsed and filtered.
    static func embeddedJSON(to bytes: Int) -> String {
        var object = "{"
        var index = 0
        while object.utf8.count < bytes - 40 {
            object += (index == 0 ? "" : ",") + "\"k\(index)\":{\"password\":\"p\(index)\",\"city\":\"Oslo\"}"
            index += 1
        }
        return object + "}"
    }

    public func run() throws -> Report {
        let template = try PromptTemplate(parsing: "Summarize this lead for the account team, in three sentences: {*}")
        let renderer = PromptRenderer(
            fields: Self.fields, exclusion: FieldExclusion(excludedFields: []),
            detector: SensitiveValueDetector(alsoRedact: SensitiveValueDetector.optIn),
            limits: .init(fieldCharacters: PromptLimits.fieldCharacters, promptCharacters: PromptLimits.promptCharacters)
        )
        let metadata = PromptRenderer.Metadata(recordID: RecordID(1), pipelineName: "Leads", tenantName: "Acme", currentUser: "bench")
        func nsPerByte(_ notes: String) -> Double {
            let data: [String: JSONValue] = ["name": "Jane Doe", "company": "Acme Corporation", "notes": .string(notes)]
            var runs = 0
            var bytes = 0
            let start = ThreadCPUClock.now()
            var now = start
            while runs < 3 || Double(now - start) / 1e9 < self.minimumSeconds {
                bytes &+= renderer.render(template, data: data, metadata: metadata).prompt.utf8.count
                runs += 1
                now = ThreadCPUClock.now()
            }
            precondition(bytes > 0)
            return Double(now - start) / Double(runs) / Double(notes.utf8.count)
        }
        var rows: [Row] = []
        var inputs = Self.inputs.map { input in (input.name, { (size: Int) in Self.repeated(input.unit, to: size) }) }
        inputs.append(("json in a string, keys withheld", { Self.embeddedJSON(to: $0) }))
        for size in self.sizes {
            // The best of three: a VM's rate flips between levels (see TemplateBenchmark).
            let ordinary = (0..<3).map { _ in nsPerByte(Self.repeated(Self.prose, to: size)) }.min()!
            rows.append(Row(input: "ordinary CRM prose", bytes: size, ns_per_byte: ordinary, ratio: 1))
            for (name, make) in inputs {
                let value = make(size)
                let cost = (0..<3).map { _ in nsPerByte(value) }.min()!
                rows.append(Row(input: name, bytes: size, ns_per_byte: cost, ratio: cost / ordinary))
            }
        }
        let worst = rows.max { $0.ratio < $1.ratio }!
        return Report(rows: rows.sorted { ($0.input == "ordinary CRM prose" ? 0 : 1, $0.input, $0.bytes) < ($1.input == "ordinary CRM prose" ? 0 : 1, $1.input, $1.bytes) }, worst_ratio: worst.ratio, worst_input: "\(worst.input) (\(worst.bytes) bytes)")
    }
}
