import Logging
public import OneoWire
public import OneoPrompt
import Synchronization

/// The first step of a job: the prompt, rendered and guarded from the record the queue manager
/// sent. The parsed template and the renderer are built once per (pipeline version, field config,
/// tenant names) and reused by every job that shares them.
public final class PromptContext: Sendable {
    /// What the provider step sends, and the audit of what it withheld.
    public struct Prepared: Sendable {
        public let prompt: String
        public let audit: JSONValue
        public let rendered: PromptRenderer.Rendered
    }

    /// Why a job cannot be rendered: it fails at once, with this code.
    public struct Refusal: Error, Sendable, Equatable {
        public let code: JobFailureCode
        public let message: String
    }

    private struct Key: Hashable {
        let pipeline: PipelineID
        let fieldsVersion: Int64
        let config: AIFieldConfig
        let sensitiveNames: [String]
    }

    /// Enough for every AI field a tenant is likely to run; past it the cache starts over rather
    /// than grow with a churn of configs.
    private static let capacity = 256

    private let tenantName: String
    /// Each pipeline's newest field list, as the queue manager sent it.
    private let fields = Mutex<[PipelineID: PipelineFields]>([:])
    private let prepared = Mutex<[Key: (template: PromptTemplate, renderer: PromptRenderer)]>([:])

    private static let noFields = PipelineFields(pipeline: PipelineID(0), version: 0, fields: [])

    public init(tenantName: String) {
        self.tenantName = tenantName
    }

    /// Keeps a pipeline's field list (an older version than the one held is ignored).
    public func receive(_ list: PipelineFields) {
        self.fields.withLock { entries in
            if entries.count >= Self.capacity, entries[list.pipeline] == nil { entries.removeAll(keepingCapacity: true) }
            if (entries[list.pipeline]?.version ?? -1) <= list.version { entries[list.pipeline] = list }
        }
    }

    public func prepare(_ order: JobOrder) -> Result<Prepared, Refusal> {
        guard let data = order.recordData else {
            return .failure(Refusal(code: .recordMissing, message: "the record no longer exists"))
        }
        // A workflow node's prompt names no record fields: its only data is `{workflow_data}`.
        guard let list = order.workflow != nil ? Self.noFields : self.fields.withLock({ $0[order.pipeline] }), list.version >= order.fieldsVersion else {
            return .failure(Refusal(code: .internal, message: "the queue manager sent no field list for this pipeline version"))
        }
        let key = Key(pipeline: order.pipeline, fieldsVersion: list.version, config: order.config, sensitiveNames: order.tenantSensitiveNames)
        let built: (template: PromptTemplate, renderer: PromptRenderer)
        if let cached = self.prepared.withLock({ $0[key] }) {
            built = cached
        } else {
            do {
                built = (try PromptTemplate(parsing: order.config.prompt),
                         PromptRenderer(fields: list.fields, config: order.config, tenantSensitiveNames: order.tenantSensitiveNames))
            } catch {
                return .failure(Refusal(code: .badTemplate, message: error.description))
            }
            self.prepared.withLock { entries in
                if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
                entries[key] = built
            }
        }
        let rendered = built.renderer.render(built.template, data: data, metadata: .init(
            recordID: order.workflow == nil ? order.record : nil, pipelineName: order.pipelineName, tenantName: self.tenantName,
            currentUser: order.triggeredBy, workflowData: order.workflow?.context
        ))
        return .success(Prepared(prompt: rendered.prompt, audit: rendered.audit, rendered: rendered))
    }
}
