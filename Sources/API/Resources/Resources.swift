public import Foundation
public import OneoWire
public import OneoPrompt
public import OneoStore
public import OneoCore

/// A pipeline as the API shows it.
public struct PipelineResource: Codable, Sendable {
    public let id: PipelineID
    public let name: String
    public let slug: String
    public let created_at: Date
}

/// A field as the API shows it; `ai_config` is the validated config with defaults filled in. In
/// a list it is a bounded summary: no `prompt`, `system_message`, lists or `output_schema` (sizes of the first three instead).
public struct FieldResource: Codable, Sendable {
    public let id: FieldID
    public let pipeline: PipelineID
    public let name: String
    public let slug: String
    public let field_type: String
    public let position: Int
    public let ai_config: JSONValue?

    init(id: FieldID, pipeline: PipelineID, name: String, slug: String, field_type: String, position: Int, ai_config: JSONValue?) {
        self.id = id
        self.pipeline = pipeline
        self.name = name
        self.slug = slug
        self.field_type = field_type
        self.position = position
        self.ai_config = ai_config
    }

    init(_ field: PipelineField, pipeline: PipelineID, whole: Bool) {
        var config = field.aiConfig?.jsonValue
        if !whole, case .object(let object)? = config {
            // A bounded summary: its scalar settings, and the sizes of its text and lists.
            var summary = object.filter { _, value in
                value.arrayValue == nil && value.objectValue == nil && value.stringValue.map { $0.utf8.count <= 100 } ?? true
            }
            summary["prompt"] = nil
            summary["system_message"] = nil
            summary["prompt_bytes"] = .integer(Int64(field.aiConfig?.prompt.utf8.count ?? 0))
            summary["system_message_bytes"] = .integer(Int64(field.aiConfig?.systemMessage?.utf8.count ?? 0))
            summary["excluded_fields_count"] = .integer(Int64(field.aiConfig?.excludedFields.count ?? 0))
            config = .object(summary)
        }
        self.init(id: field.id, pipeline: pipeline, name: field.name, slug: field.slug, field_type: field.type.rawValue, position: field.position, ai_config: config)
    }
}

/// A job queued by a record write, in the reference's `triggered_jobs` shape.
public struct TriggeredJob: Codable, Sendable, Hashable {
    public let field: String
    public let job_id: String
    public let status: String
}

/// A record, with the jobs its write queued when it was created or updated.
public struct RecordResource: Codable, Sendable {
    public let id: RecordID
    public let pipeline: PipelineID
    public let data: JSONValue
    public let version: Int64
    public let created_at: Date
    public let updated_at: Date
    public var triggered_jobs: [TriggeredJob]?
    public var processing_mode: String?
}

/// An AI job in the reference's field names, plus our exact `cost_micros` and lease bookkeeping.
public struct JobResource: Codable, Sendable {
    public let id: JobID
    public let job_type: String
    /// null for a workflow node's job, which belongs to no record.
    @ExplicitNull public var pipeline: PipelineID?
    @ExplicitNull public var record_id: RecordID?
    /// The field's slug, or a workflow node's id.
    public let field_name: String
    /// The workflow run a workflow node's job belongs to (null for a field's job).
    @ExplicitNull public var execution_id: String?
    public let ai_provider: String
    public let model_name: String
    /// Only on a single job (`GET /ai-jobs/{id}/`): the config of the field version it ran.
    public let prompt_template: String?
    public let ai_config: JSONValue?
    public let input_data: JSONValue
    public let status: String
    public let output_data: JSONValue
    public let tokens_used: Int
    public let prompt_tokens: Int
    /// Of the prompt tokens, those the provider served from its prompt cache.
    public let cached_tokens: Int
    public let completion_tokens: Int
    public let cost_cents: Int64
    public let cost_micros: Int64
    public let processing_time_ms: Int
    @ExplicitNull public var error_code: String?
    public let error_message: String
    public let retry_count: Int
    public let attempt: Int
    public let cache_hit: Bool
    /// What the guard withheld from the prompt: counts and field names, never values.
    public let prompt_audit: JSONValue
    /// The model's tool calls in order: tool, ms, result_bytes, error.
    public let tool_calls: JSONValue
    public let max_attempts: Int
    /// The AI fields of the record this job waits for.
    public let depends_on: [String]
    public let created_at: Date
    public let updated_at: Date
    @ExplicitNull public var started_at: Date?
    @ExplicitNull public var completed_at: Date?
    /// Only on a single job: each attempt, the ended ones with their error, oldest first.
    public var attempts: [JobAttemptResource]?
    /// Only on a single job: the files its tools made (`GET …/artifacts/{name}` downloads one).
    public var artifacts: [JobArtifactResource]?
}

/// A file a job's tools made.
public struct JobArtifactResource: Codable, Sendable {
    public let name: String
    public let media_type: String
    public let size: Int
    public let created_at: Date
}

/// One attempt of a job: how it ended (`retried`, `failed`, `cancelled`, `completed`, or
/// `running`) and the error it ended with.
public struct JobAttemptResource: Codable, Sendable {
    public let attempt: Int
    public let outcome: String
    @ExplicitNull public var error_code: String?
    public let error_message: String
    /// Provider calls retried in place within the attempt.
    public let provider_retries: Int
    @ExplicitNull public var started_at: Date?
    @ExplicitNull public var ended_at: Date?
}

/// A page of a list, in Django REST framework's shape.
public struct Page<Item: Codable & Sendable>: Codable, Sendable {
    public let count: Int
    @ExplicitNull public var next: String?
    @ExplicitNull public var previous: String?
    public let results: [Item]

    public init(count: Int, next: String?, previous: String?, results: [Item]) {
        self.count = count
        self.next = next
        self.previous = previous
        self.results = results
    }
}

/// An optional that encodes as `null` rather than being left out, as Django REST framework's
/// clients expect keys like `next` and `completed_at` to be present.
@propertyWrapper
public struct ExplicitNull<Value: Codable & Sendable>: Codable, Sendable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self.wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value = self.wrappedValue { try container.encode(value) } else { try container.encodeNil() }
    }
}
