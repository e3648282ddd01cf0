public import OneoWire
/// A prompt template parsed once into segments. `{slug}` and `{a.b}` name record fields, `{*}`
/// stands for every field the prompt may see, a few names are built in, and `{{` / `}}` are
/// literal braces.
public struct PromptTemplate: Sendable, Hashable {
    public enum Segment: Sendable, Hashable {
        case literal(String)
        /// A field path (`billing.city` is `["billing", "city"]`) and the offset of its `{`.
        case field(path: [String], position: Int)
        case allFields(position: Int)
        case builtin(Builtin, position: Int)
    }

    public enum Builtin: String, Sendable, CaseIterable {
        case recordID = "record_id"
        case pipelineName = "pipeline_name"
        case tenantName = "tenant_name"
        case currentUser = "current_user"
        case workflowData = "workflow_data"
    }

    public let source: String
    public let segments: [Segment]
    /// Unicode scalars of the template's own text (its literals), counted once at parse: every
    /// render reserves them within the prompt's bound.
    public let literalScalars: Int

    /// Parses a template, refusing one over `PromptLimits.templateBytes`, with more than
    /// `PromptLimits.placeholders` placeholders, or with a path deeper than `PromptLimits.pathDepth`.
    public init(parsing source: String) throws(TemplateError) {
        guard source.utf8.count <= PromptLimits.templateBytes else {
            throw TemplateError(.tooLong(bytes: source.utf8.count), position: 0)
        }
        self.source = source
        self.segments = try Self.parse(Array(source.unicodeScalars))
        self.literalScalars = self.segments.reduce(0) { total, segment in
            if case .literal(let text) = segment { return total + text.unicodeScalars.count }
            return total
        }
    }

    /// Top-level field slugs the template names explicitly (`{billing.city}` names `billing`).
    public var referencedFields: [String] {
        var seen = Set<String>()
        return self.segments.compactMap { segment in
            guard case .field(let path, _) = segment, let head = path.first, seen.insert(head).inserted else {
                return nil
            }
            return head
        }
    }

    public var usesAllFields: Bool {
        self.segments.contains { if case .allFields = $0 { return true } else { return false } }
    }

    private static func parse(_ scalars: [Unicode.Scalar]) throws(TemplateError) -> [Segment] {
        var segments: [Segment] = []
        var placeholders = 0
        var literal = String.UnicodeScalarView()
        var index = 0
        func flushLiteral() {
            if !literal.isEmpty { segments.append(.literal(String(literal))) }
            literal = String.UnicodeScalarView()
        }
        while index < scalars.count {
            let scalar = scalars[index]
            let next = index + 1 < scalars.count ? scalars[index + 1] : nil
            switch scalar {
            case "{" where next == "{", "}" where next == "}":
                literal.append(scalar)
                index += 2
            case "}":
                throw TemplateError(.unmatchedClosingBrace, position: index)
            case "{":
                guard let close = scalars[(index + 1)...].firstIndex(where: { $0 == "}" || $0 == "{" }),
                    scalars[close] == "}"
                else {
                    throw TemplateError(.unclosedPlaceholder, position: index)
                }
                let name = String(String.UnicodeScalarView(scalars[(index + 1)..<close]))
                flushLiteral()
                placeholders += 1
                guard placeholders <= PromptLimits.placeholders else { throw TemplateError(.tooManyPlaceholders, position: index) }
                segments.append(try Self.placeholder(name, position: index))
                index = close + 1
            default:
                literal.append(scalar)
                index += 1
            }
        }
        flushLiteral()
        return segments
    }

    private static func placeholder(_ name: String, position: Int) throws(TemplateError) -> Segment {
        if name == "*" { return .allFields(position: position) }
        if let builtin = Builtin(rawValue: name) { return .builtin(builtin, position: position) }
        let path = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard path.allSatisfy(Self.isIdentifier) else {
            throw TemplateError(.invalidPlaceholder(String(name.unicodeScalars.prefix(80))), position: position)
        }
        guard path.count <= PromptLimits.pathDepth else { throw TemplateError(.pathTooDeep, position: position) }
        return .field(path: path, position: position)
    }

    private static func isIdentifier(_ part: String) -> Bool {
        guard let first = part.unicodeScalars.first, first == "_" || first.properties.isAlphabetic else {
            return false
        }
        return part.unicodeScalars.allSatisfy { $0 == "_" || $0 == "-" || $0.properties.isAlphabetic || ("0"..."9").contains($0) }
    }
}

/// A template that cannot be parsed, with the character offset of the problem.
public struct TemplateError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case unclosedPlaceholder
        case unmatchedClosingBrace
        case invalidPlaceholder(String)
        case tooLong(bytes: Int)
        case tooManyPlaceholders
        case pathTooDeep
    }

    public let reason: Reason
    public let position: Int

    public init(_ reason: Reason, position: Int) {
        self.reason = reason
        self.position = position
    }

    public var description: String {
        switch self.reason {
        case .unclosedPlaceholder:
            return "unclosed placeholder: '{' at position \(self.position) has no matching '}' (write '{{' for a literal brace)"
        case .unmatchedClosingBrace:
            return "unmatched '}' at position \(self.position) (write '}}' for a literal brace)"
        case .invalidPlaceholder(let name):
            return "invalid placeholder '{\(name)}' at position \(self.position): use a field slug, a dotted path, '*' or a built-in name"
        case .tooLong(let bytes):
            return "the template is \(bytes) bytes; the limit is \(PromptLimits.templateBytes) bytes"
        case .tooManyPlaceholders:
            return "placeholder at position \(self.position) is one too many: a template may hold at most \(PromptLimits.placeholders) placeholders"
        case .pathTooDeep:
            return "placeholder at position \(self.position) is a path of more than \(PromptLimits.pathDepth) keys"
        }
    }
}
