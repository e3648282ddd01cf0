import Logging
import OneoCore
import Synchronization

/// What a job's prompt is rendered with: the parsed template and a renderer over the pipeline's
/// fields, its exclusions and the tenant's sensitive names. Both are built once per (pipeline
/// version, field config, tenant names) and reused by every job that shares them; a field added
/// through the API bumps the version, so the next job builds afresh.
final class PromptPreparation: Sendable {
    struct Prepared: Sendable {
        let template: PromptTemplate
        let renderer: PromptRenderer
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

    private let store: JobStore
    private let fields = Mutex<[PipelineID: (version: Int64, fields: [PipelineField])]>([:])
    private let prepared = Mutex<[Key: Prepared]>([:])

    init(store: JobStore) {
        self.store = store
    }

    func prepare(_ job: ClaimedJob, logger: Logger) async throws -> Result<Prepared, TemplateError> {
        let (version, fields) = try await self.fields(for: job, logger: logger)
        let key = Key(pipeline: job.pipeline, fieldsVersion: version, config: job.config, sensitiveNames: job.tenantSensitiveNames)
        if let cached = self.prepared.withLock({ $0[key] }) { return .success(cached) }
        let template: PromptTemplate
        do {
            template = try PromptTemplate(parsing: job.config.prompt)
        } catch {
            return .failure(error)
        }
        let fresh = Prepared(template: template, renderer: PromptRenderer(fields: fields, config: job.config, tenantSensitiveNames: job.tenantSensitiveNames))
        self.prepared.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = fresh
        }
        return .success(fresh)
    }

    /// The pipeline's field list, read once and kept while the version a claimed job carries says
    /// it is current.
    private func fields(for job: ClaimedJob, logger: Logger) async throws -> (Int64, [PipelineField]) {
        if let cached = self.fields.withLock({ $0[job.pipeline] }), cached.version >= job.fieldsVersion {
            return cached
        }
        let fresh = try await self.store.fields(of: job.pipeline, logger: logger)
        self.fields.withLock { entries in
            if (entries[job.pipeline]?.version ?? -1) < fresh.version { entries[job.pipeline] = fresh }
        }
        return fresh
    }
}
