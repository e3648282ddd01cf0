public import OneoWire
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
        "pwd", "passcode", "credential", "credentials", "authorization", "access_key", "secret_key", "auth_token",
    ]

    private let explicit: Set<String>
    private let explicitPaths: Set<[String]>
    /// Every proper prefix of a dotted path (`["billing"]` for `billing.card_number`): below
    /// anything else, no dotted path can apply, and a key filter stops tracking its path.
    private let pathPrefixes: Set<[String]>
    private let sensitiveNames: SensitiveNames
    /// Whether `amount` and `currency` are kept by name (money shows as money).
    private let namesKeepMoney: Bool

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
        var prefixes = Set<[String]>()
        for path in paths where path.count > 1 {
            for length in 1..<path.count { prefixes.insert(Array(path.prefix(length))) }
        }
        self.pathPrefixes = prefixes
        self.sensitiveNames = SensitiveNames(Self.defaultSensitiveNames + tenantSensitiveNames)
        self.namesKeepMoney = !self.sensitiveNames.occurs(in: "amount") && !self.sensitiveNames.occurs(in: "currency")
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

    /// Whether a dotted path is withheld (the placeholder `{billing.card_number}`).
    public func excludes(path: [String]) -> Bool {
        let lowered = path.map { $0.lowercased() }
        for length in 1...lowered.count where self.explicitPaths.contains(Array(lowered.prefix(length))) { return true }
        return lowered.dropFirst().contains { self.isSensitiveName($0) }
    }

    public func isSensitiveName(_ name: String) -> Bool {
        self.sensitiveNames.occurs(in: name)
    }

    /// The nested keys a value at `path` (lower-cased: `["billing"]`) keeps when it is written:
    /// every key but the sensitive ones and those a dotted `excluded_fields` entry names.
    public func nestedKeys(at path: [String]) -> NestedKeys {
        let tracked = self.pathPrefixes.contains(path)
        return NestedKeys(names: self.sensitiveNames, namesKeepMoney: self.namesKeepMoney, dotted: tracked ? (self.explicitPaths, self.pathPrefixes, path) : nil)
    }

    /// The key filter a value is written through, so that what a prompt shows of an object is the
    /// object less its withheld keys, at any depth. Asked once per key written: it holds one
    /// reference, and a path only while that path leads to a dotted exclusion (so its length is
    /// bounded by the longest dotted path, however deep the value).
    public struct NestedKeys: JSONKeyFilter, Sendable {
        let names: SensitiveNames
        let namesKeepMoney: Bool
        let dotted: (excluded: Set<[String]>, prefixes: Set<[String]>, path: [String])?

        init(names: SensitiveNames, namesKeepMoney: Bool, dotted: (excluded: Set<[String]>, prefixes: Set<[String]>, path: [String])?) {
            self.names = names
            self.namesKeepMoney = namesKeepMoney
            self.dotted = dotted
        }

        public var keepsMoneyKeys: Bool {
            guard self.namesKeepMoney else { return false }
            guard let dotted = self.dotted else { return true }
            return !dotted.excluded.contains(dotted.path + ["amount"]) && !dotted.excluded.contains(dotted.path + ["currency"])
        }

        public func keeping(_ key: String) -> NestedKeys? {
            guard !self.names.occurs(in: key) else { return nil }
            guard let dotted = self.dotted else { return self }
            let inner = dotted.path + [key.lowercased()]
            if dotted.excluded.contains(inner) { return nil }
            // Past every dotted path's prefixes nothing below can be excluded by path.
            return NestedKeys(names: self.names, namesKeepMoney: self.namesKeepMoney, dotted: dotted.prefixes.contains(inner) ? (dotted.excluded, dotted.prefixes, inner) : nil)
        }
    }
}
