import Foundation
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import Testing

// Every secret below is made-up test data, shaped to trip the detectors: none is a real key.
// AKIAIOSFODNN7EXAMPLE is the example key of AWS's own documentation.
@Suite("sensitive-value detectors")
struct SensitiveValueDetectorTests {
    let detector = SensitiveValueDetector()

    @Test("secrets and identifiers are redacted by kind", arguments: [
        ("card 4111 1111 1111 1111 on file", "card [REDACTED:card] on file", SensitiveValueDetector.Kind.card),
        ("card 4111-1111-1111-1111.", "card [REDACTED:card].", .card),
        ("pan 4012888888881881", "pan [REDACTED:card]", .card),
        ("ssn 123-45-6789, thanks", "ssn [REDACTED:ssn], thanks", .ssn),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN [REDACTED:iban] please", .iban),
        ("iban DE89370400440532013000", "iban [REDACTED:iban]", .iban),
        ("key sk-proj-abcdefghijklmnopqrstuvwxyz123456", "key [REDACTED:api_key]", .apiKey),
        ("aws AKIAIOSFODNN7EXAMPLE here", "aws [REDACTED:aws_key] here", .awsKey),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk ok", "jwt [REDACTED:jwt] ok", .jwt),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- done", "[REDACTED:private_key] done", .privateKey),
    ])
    func redacts(input: String, expected: String, kind: SensitiveValueDetector.Kind) {
        let result = self.detector.redact(input)
        #expect(result.text == expected)
        #expect(result.counts == [kind: 1])
    }

    @Test("ordinary text and numbers that fail the checksums are left alone", arguments: [
        "order 4111 1111 1111 1112 shipped",      // Luhn fails
        "IBAN GB82 WEST 1234 5698 7654 33",      // mod 97 fails
        "phone 555-123-4567 and 2024-05-01",
        "id 000-12-3456 is not an SSN",
        "sk-short and AKIA123 and eyJ.x",
        "revenue 1234567 and 98.6 degrees",
        "jane@example.com",                      // e-mail is opt-in
    ])
    func leavesAlone(input: String) {
        #expect(self.detector.redact(input).text == input)
    }

    @Test("e-mail addresses and phone numbers only when a field asks")
    func optIn() {
        let text = "write to jane.doe+crm@example.co.uk or call +1 (555) 123-4567"
        #expect(self.detector.redact(text).counts.isEmpty)
        let strict = SensitiveValueDetector(alsoRedact: [.email, .phone])
        let result = strict.redact(text)
        #expect(result.text == "write to [REDACTED:email] or call [REDACTED:phone]")
        #expect(result.counts == [.email: 1, .phone: 1])
    }
}

@Suite("field exclusion")
struct FieldExclusionTests {
    static func field(_ slug: String, _ name: String, _ type: FieldType = .text) -> PipelineField {
        PipelineField(id: FieldID(1), slug: slug, name: name, type: type, position: 0, aiConfig: type == .aiGenerated ? AIFieldConfig(prompt: "x") : nil)
    }

    @Test("built-in sensitive names match as whole words of the slug or label", arguments: [
        ("customer_ssn", "Customer", true), ("stripe_key", "Stripe API key", true), ("password_hint", "Hint", true),
        ("iban", "Account", true), ("tokens_used", "Tokens used", false), ("secretary", "Secretary", false), ("name", "Name", false),
    ])
    func defaults(slug: String, name: String, excluded: Bool) {
        #expect(FieldExclusion(excludedFields: []).excludes(Self.field(slug, name)) == excluded)
    }

    @Test("excluded_fields match slug or label case-insensitively; the tenant's list adds words")
    func explicitAndTenant() {
        let exclusion = FieldExclusion(excludedFields: ["Internal Notes", "DEAL"], tenantSensitiveNames: ["salary"])
        #expect(exclusion.excludes(Self.field("notes", "internal notes")))
        #expect(exclusion.excludes(Self.field("deal", "Deal size")))
        #expect(exclusion.excludes(Self.field("base_salary", "Base")))
        #expect(!exclusion.excludes(Self.field("company", "Company")))
        #expect(exclusion.excludes(Self.field("summary", "Summary", .aiGenerated)), "AI outputs stay out of {*}")
    }

    @Test("nested keys are withheld by dotted path or sensitive name, at any depth, as a value is written")
    func nested() {
        let exclusion = FieldExclusion(excludedFields: ["billing.internal_code"])
        let value: JSONValue = [
            "city": "Oslo", "card_number": "4111111111111111", "internal_code": "X1", "bank": ["iban": "x", "name": "DNB"],
            "contacts": [["Password": "p", "role": "cfo"]],
        ]
        var written: [UInt8] = []
        let withheld = ValueFormatter(maximumCharacters: 1_000).write(value, as: .json, keeping: exclusion.nestedKeys(at: ["billing"]), to: &written)
        #expect(String(decoding: written, as: UTF8.self) == #"{"bank":{"name":"DNB"},"city":"Oslo","contacts":[{"role":"cfo"}]}"#)
        #expect(withheld == 4)
        #expect(exclusion.excludes(path: ["billing", "internal_code"]))
        #expect(exclusion.excludes(path: ["billing", "card_number"]))
        #expect(!exclusion.excludes(path: ["billing", "city"]))
    }

    @Test("money whose amount or currency a tenant names sensitive is not shown as money")
    func sensitiveMoneyKey() {
        let exclusion = FieldExclusion(excludedFields: [], tenantSensitiveNames: ["amount"])
        var written: [UInt8] = []
        let withheld = ValueFormatter(maximumCharacters: 100).write(["amount": 1234.5, "currency": "USD"], as: .currency, keeping: exclusion.nestedKeys(at: ["deal"]), to: &written)
        #expect(String(decoding: written, as: UTF8.self) == #"{"currency":"USD"}"#)
        #expect(withheld == 1)
    }

    /// The plain definition the byte matcher must agree with: lower-cased runs of letters and
    /// digits, and a sensitive name as a run of whole words among them.
    /// The word definition, written plainly: invisible scalars and combining marks dropped; a
    /// word ends at anything that is not a letter or digit, between lower and upper case, between
    /// letters and digits, and before the last capital of a run followed by a lower-case letter.
    static func referenceWords(_ text: String) -> [String] {
        func kind(_ scalar: Unicode.Scalar) -> Character {
            let p = scalar.properties
            if p.numericType != nil, !p.isAlphabetic { return "d" }
            if p.isAlphabetic { return p.isUppercase ? "u" : (p.isLowercase ? "l" : "c") }
            return "o"
        }
        let folded = text.unicodeScalars.map { (0xFF01...0xFF5E).contains($0.value) ? Unicode.Scalar($0.value - 0xFEE0)! : $0 }
        let scalars = folded.filter {
            let category = $0.properties.generalCategory
            return !(category == .format || $0.properties.isDefaultIgnorableCodePoint || category == .nonspacingMark || category == .spacingMark || category == .enclosingMark)
        }
        var spaced: [Unicode.Scalar] = []
        for (index, scalar) in scalars.enumerated() {
            let current = kind(scalar)
            if index > 0 {
                let previous = kind(scalars[index - 1])
                let letter: Set<Character> = ["l", "u", "c"]
                let cased: Set<Character> = ["l", "u"]
                if (previous == "l" || previous == "d") && current == "u" || previous == "d" && letter.contains(current) || letter.contains(previous) && current == "d"
                    || cased.contains(previous) && current == "c" || previous == "c" && cased.contains(current)
                {
                    spaced.append(" ")
                } else if previous == "u", current == "l", index >= 2, kind(scalars[index - 2]) == "u", spaced.last != " " {
                    spaced.insert(" ", at: spaced.count - 1)
                }
            }
            spaced.append(current == "o" ? " " : scalar)
        }
        return String(String.UnicodeScalarView(spaced)).lowercased().split(separator: " ").map(String.init)
    }

    /// A name is sensitive when a sensitive name's words occur in it as a run, or one of its words
    /// is, or ends with, a sensitive name written as one word (at least three bytes to end one).
    static func referenceVerdict(_ name: String, sensitive: [String]) -> Bool {
        let nameWords = referenceWords(name)
        return sensitive.map(referenceWords).filter { !$0.isEmpty }.contains { run in
            let joined = run.joined()
            func endsWithName(_ word: String) -> Bool { word == joined || (joined.utf8.count >= 3 && word.hasSuffix(joined)) }
            // Plurals too (`passwords`), but not `tokens`: token counts are usage figures.
            func plural(_ word: String) -> Bool {
                guard word.utf8.count >= 4, word.hasSuffix("s"), word != "tokens" else { return false }
                if word.utf8.count - 1 >= 3, endsWithName(String(word.dropLast())) { return true }
                return word.hasSuffix("es") && word.utf8.count - 2 >= 3 && endsWithName(String(word.dropLast(2)))
            }
            if nameWords.contains(where: { endsWithName($0) || plural($0) }) { return true }
            // A run of words, its last one perhaps plural (`api_keys`; `auth_tokens` too).
            func sameOrPlural(_ word: String, _ name: String) -> Bool {
                word == name || (word.utf8.count >= 4 && (word == name + "s" || (word == name + "es" && name.utf8.count >= 3)) && word.utf8.count - 1 >= 3)
            }
            return run.count <= nameWords.count && (0...(nameWords.count - run.count)).contains { start in
                let last = nameWords[start + run.count - 1]
                return Array(nameWords[start..<(start + run.count - 1)]) == Array(run.dropLast()) && (last == run.last! || (run.count > 1 && sameOrPlural(last, run.last!)))
            }
        }
    }

    @Test("sensitive names match exactly as the word definition says, for any name", arguments: [
        "API_KEY", "my-api-key", "apiKey", "api key id", "key_api", "credit card", "CreditCard", "credit__card", "social security number x",
        "social_number", "ssn2", "2ssn", "tax-ID", "taxid", "Private Notes", "private", "secretary", "top secret", "Passwörter", "pässword",
        "token\u{301}", "İBAN", "iban_ü", "", "___", "a", "card_number_card", "bank_account_number",
        "accessToken", "clientSecret", "cardNumber", "customerSSN", "APIKey", "stripeApiKey", "ACCESS_TOKEN", "accesstoken",
        "customerssn", "stripeapikey", "CARDNUMBER", "pass\u{200B}word", "oauth2Token", "tokens", "tokenCount", "XMLHttpRequest",
        "Kontonummer2", "kundenKontonummer", "homeAddress", "HOMEADDRESS", "secret\u{00A0}key", "key：secret", "カードsecret",
        "passwords", "secrets", "api_keys", "SSN番号", "ｐａｓｓｗｏｒｄ", "Credentials", "tokens", "passwordes", "account_numbers",
        "accessKeys", "auth_tokens", "bank_accounts", "keys",
    ])
    func matcherAgreesWithDefinition(name: String) {
        let exclusion = FieldExclusion(excludedFields: [], tenantSensitiveNames: ["salary", "Kontonummer", "home address"])
        let sensitive = FieldExclusion.defaultSensitiveNames + ["salary", "Kontonummer", "home address"]
        #expect(exclusion.isSensitiveName(name) == Self.referenceVerdict(name, sensitive: sensitive), "\(name)")
    }
}

@Suite("value formatting")
struct ValueFormatterTests {
    let formatter = ValueFormatter(maximumCharacters: 40)

    static let cases: [(JSONValue, FieldType, String)] = [
        (JSONValue.double(0.1 + 0.2), FieldType.number, "0.3"),
        (.double(1500), .number, "1500"),
        (.double(-2.5e-7), .number, "-2.5e-07"),
        (.integer(42), .number, "42"),
        (.double(1234.5), .currency, "1,234.50"),
        (["amount": .double(1234.5), "currency": "usd"], .json, "USD 1,234.50"),
        (["amount": .integer(-1000000), "currency": "EUR"], .json, "EUR -1,000,000.00"),
        (.bool(true), .boolean, "true"),
        (["b", "a", .integer(3)], .tags, "b, a, 3"),
        ([["k": 1]], .json, "[{\"k\":1}]"),
        (["z": 1, "a": ["y": true, "b": .null]], .json, "{\"a\":{\"b\":null,\"y\":true},\"z\":1}"),
        (.string("2024-05-01"), .date, "2024-05-01"),
        (.string("2024-05-01T10:30:00+02:00"), .datetime, "2024-05-01T08:30:00Z"),
        (.string("not a date"), .date, "not a date"),
        (.null, .text, "(empty)"),
    ]

    @Test("each kind of value has one text form", arguments: Self.cases)
    func formats(value: JSONValue, type: FieldType, expected: String) {
        #expect(self.formatter.format(value, as: type) == expected)
    }

    @Test("long text is cut at the limit with a visible marker")
    func truncation() {
        let text = String(repeating: "abcde", count: 20)
        #expect(self.formatter.format(.string(text)) == String(text.prefix(40)) + "… [truncated 60 characters]")
    }
}
