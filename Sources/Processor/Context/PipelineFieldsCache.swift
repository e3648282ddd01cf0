import Logging
import OneoCore
import Synchronization

/// Each pipeline's field list, read once and kept while the version a claimed job carries says it
/// is current. A field added through the API bumps the version, so the next job re-reads it.
final class PipelineFieldsCache: Sendable {
    private let store: JobStore
    private let entries = Mutex<[PipelineID: (version: Int64, fields: [PipelineField])]>([:])

    init(store: JobStore) {
        self.store = store
    }

    func fields(for job: ClaimedJob, logger: Logger) async throws -> [PipelineField] {
        if let cached = self.entries.withLock({ $0[job.pipeline] }), cached.version >= job.fieldsVersion {
            return cached.fields
        }
        let fresh = try await self.store.fields(of: job.pipeline, logger: logger)
        self.entries.withLock { entries in
            if (entries[job.pipeline]?.version ?? -1) < fresh.version { entries[job.pipeline] = fresh }
        }
        return fresh.fields
    }
}
