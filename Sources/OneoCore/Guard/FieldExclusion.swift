import Synchronization

/// Which fields and nested keys a prompt must never see:
/// - every AI output (a prompt sees inputs, not other outputs);
/// - the field's `excluded_fields`, by slug or label, case-insensitively, with dotted paths
///   (`billing.card_number`) reaching into objects;
/// - names that are sensitive by default or by the tenant's list, matched as whole words of the
///   slug, label or key (`customer_ssn`, `Stripe API key`), so a tenant can add to the defaults
///   but never empty them.
public struct FieldExclusion: Sendable {
    /// Built in; a tenant's own list adds to it.
    public static let defaultSensitiveNames: [String] = [
        "ssn", "social_security_number", "social_security", "password", "passwd", "token", "api_key", "apikey",
        "secret", "client_secret", "credit_card", "card_number", "cvv", "cvc", "bank_account", "account_number",
        "routing_number", "iban", "private_notes", "confidential", "private_key", "tax_id", "passport_number",
    ]

    private let explicit: Set<String>
    private let explicitPaths: Set<[String]>
    private let sensitiveWords: [[Substring]]
    /// The one-word sensitive names, for a set lookup before the sequence search.
    private let sensitiveSingles: Set<Substring>
    /// Nested keys repeat from record to record (`amount`, `city`): each is judged once.
    private let keyVerdicts = KeyVerdicts()

    public init(excludedFields: [String], tenantSensitiveNames: [String] = []) {
        var explicit = Set<String>()
        var paths = Set<[String]>()
        for entry in excludedFields.map({ $0.lowercased() }) {
            if entry.contains(".") {
                paths.insert(entry.split(separator: ".").map(String.init))
            } else {
                explicit.insert(entry)
            }
        }
        self.explicit = explicit
        self.explicitPaths = paths
        let all = (Self.defaultSensitiveNames + tenantSensitiveNames).map { Self.words($0) }.filter { !$0.isEmpty }
        self.sensitiveSingles = Set(all.filter { $0.count == 1 }.map { $0[0] })
        self.sensitiveWords = all.filter { $0.count > 1 }
    }

    /// Whether a whole field is withheld, and why (nil: it may be seen).
    public func reason(for field: PipelineField) -> String? {
        if field.isAIGenerated { return "ai_output" }
        if self.explicit.contains(field.slug.lowercased()) || self.explicit.contains(field.name.lowercased()) { return "excluded" }
        if self.isSensitiveName(field.slug) || self.isSensitiveName(field.name) { return "sensitive" }
        return nil
    }

    public func excludes(_ field: PipelineField) -> Bool { self.reason(for: field) != nil }

    /// The fields `{*}` expands to, in pipeline order.
    public func visibleFields(of fields: [PipelineField]) -> [PipelineField] {
        fields.filter { !self.excludes($0) }
    }

    /// A value with every excluded or sensitive nested key removed, and how many were removed.
    /// Most values have nothing to remove: they are checked first and returned as they are,
    /// without rebuilding their dictionaries.
    public func scrub(_ value: JSONValue, at path: [String]) -> (JSONValue, removed: Int) {
        guard self.needsScrubbing(value, at: path) else { return (value, 0) }
        return self.rebuild(value, at: path)
    }

    private func needsScrubbing(_ value: JSONValue, at path: [String]) -> Bool {
        switch value {
        case .null, .bool, .integer, .double, .string:
            return false
        case .object(let object):
            for (key, inner) in object {
                let innerPath = self.explicitPaths.isEmpty ? path : path + [key.lowercased()]
                if !self.explicitPaths.isEmpty, self.explicitPaths.contains(innerPath) { return true }
                if self.isSensitiveKey(key) || self.needsScrubbing(inner, at: innerPath) { return true }
            }
            return false
        case .array(let items):
            return items.contains { self.needsScrubbing($0, at: path) }
        }
    }

    private func rebuild(_ value: JSONValue, at path: [String]) -> (JSONValue, removed: Int) {
        switch value {
        case .null, .bool, .integer, .double, .string:
            return (value, 0)
        case .object(let object):
            var kept: [String: JSONValue] = [:]
            var removed = 0
            for (key, inner) in object {
                // Paths matter only for dotted excluded_fields; without any, none is built.
                let innerPath = self.explicitPaths.isEmpty ? path : path + [key.lowercased()]
                if (!self.explicitPaths.isEmpty && self.explicitPaths.contains(innerPath)) || self.isSensitiveKey(key) {
                    removed += 1
                    continue
                }
                let (scrubbed, count) = self.rebuild(inner, at: innerPath)
                kept[key] = scrubbed
                removed += count
            }
            return (.object(kept), removed)
        case .array(let items):
            var removed = 0
            let scrubbed = items.map { item -> JSONValue in
                let (value, count) = self.rebuild(item, at: path)
                removed += count
                return value
            }
            return (.array(scrubbed), removed)
        }
    }

    /// Whether a dotted path is withheld (the placeholder `{billing.card_number}`).
    public func excludes(path: [String]) -> Bool {
        let lowered = path.map { $0.lowercased() }
        for length in 1...lowered.count where self.explicitPaths.contains(Array(lowered.prefix(length))) { return true }
        return lowered.dropFirst().contains { self.isSensitiveName($0) }
    }

    /// `isSensitiveName` for a nested key, remembered.
    func isSensitiveKey(_ key: String) -> Bool {
        if let known = self.keyVerdicts.verdict(key) { return known }
        let verdict = self.isSensitiveName(key)
        self.keyVerdicts.remember(key, verdict)
        return verdict
    }

    public func isSensitiveName(_ name: String) -> Bool {
        let words = Self.words(name)
        guard !words.isEmpty else { return false }
        if words.contains(where: { self.sensitiveSingles.contains($0) }) { return true }
        guard words.count > 1 else { return false }
        return self.sensitiveWords.contains { sensitive in
            sensitive.count <= words.count && (0...(words.count - sensitive.count)).contains { start in
                words[start..<(start + sensitive.count)].elementsEqual(sensitive)
            }
        }
    }

    /// `Stripe API-Key` → ["stripe", "api", "key"].
    static func words(_ name: String) -> [Substring] {
        // Field names and JSON keys are nearly always ASCII: split them by bytes, without the
        // Unicode property lookups that `Character.isLetter` costs per character.
        if name.utf8.allSatisfy({ $0 < 0x80 }) {
            var words: [Substring] = []
            var lowered = name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) ? name.lowercased() : name
            lowered.makeContiguousUTF8()
            var start: String.Index?
            var index = lowered.utf8.startIndex
            while index != lowered.utf8.endIndex {
                let byte = lowered.utf8[index]
                let isWordByte = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                if isWordByte, start == nil { start = index }
                if !isWordByte, let from = start {
                    words.append(lowered[from..<index])
                    start = nil
                }
                index = lowered.utf8.index(after: index)
            }
            if let from = start { words.append(lowered[from...]) }
            return words
        }
        return name.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) })
    }
}

/// A bounded memo of nested keys already judged. Keys come from tenant data, so it stops growing
/// at a fixed size rather than letting a record with a million distinct keys fill memory.
private final class KeyVerdicts: Sendable {
    private static let capacity = 4096
    private let verdicts = Mutex<[String: Bool]>([:])

    func verdict(_ key: String) -> Bool? {
        self.verdicts.withLock { $0[key] }
    }

    func remember(_ key: String, _ verdict: Bool) {
        self.verdicts.withLock { verdicts in
            if verdicts.count < Self.capacity { verdicts[key] = verdict }
        }
    }
}
