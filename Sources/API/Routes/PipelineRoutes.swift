import Hummingbird
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO

/// `/api/v1/pipelines/` and their fields.
struct PipelineRoutes {
    let pipelines: PipelineStore
    let models: ModelCatalog

    struct CreatePipeline: Decodable {
        let name: String
        let slug: String
    }

    struct CreateField: Decodable {
        let name: String
        let slug: String
        let field_type: String
        let ai_config: JSONValue?
    }

    func add(to group: RouterGroup<APIRequestContext>) {
        group.post("pipelines") { request, context in
            let caller = try context.require(.create)
            let body = try await request.decodeBody(CreatePipeline.self, context: context)
            guard PipelineField.isValidSlug(body.slug) else {
                throw APIError.invalid("slug must be lower-case letters, digits and '_', starting with a letter (at most 63)")
            }
            try FieldValidator.checkName(body.name)
            let pipeline = try await self.pipelines.create(tenant: caller.tenant, name: body.name, slug: body.slug, logger: context.logger)
            return EditedResponse(status: .created, response: pipeline)
        }
        group.get("pipelines") { request, context in
            let caller = try context.require(.read)
            let all = try await self.pipelines.list(tenant: caller.tenant, logger: context.logger)
            return Page(count: all.count, next: nil, previous: nil, results: all)
        }
        group.get("pipelines/:pipeline") { request, context in
            let caller = try context.require(.read)
            return try await self.pipelines.resolve(tenant: caller.tenant, try context.parameters.require("pipeline"), logger: context.logger)
        }
        group.get("pipelines/:pipeline/fields") { request, context in
            let caller = try context.require(.read)
            let pipeline = try await self.pipelines.resolve(tenant: caller.tenant, try context.parameters.require("pipeline"), logger: context.logger)
            let fields = try await self.pipelines.fields(tenant: caller.tenant, pipeline: pipeline.id, logger: context.logger)
            // A list carries no templates or system messages (up to 32 KiB each): one field does.
            let resources = fields.map { FieldResource($0, pipeline: pipeline.id, whole: false) }
            return Page(count: resources.count, next: nil, previous: nil, results: resources)
        }
        group.get("pipelines/:pipeline/fields/:field") { request, context in
            let caller = try context.require(.read)
            let pipeline = try await self.pipelines.resolve(tenant: caller.tenant, try context.parameters.require("pipeline"), logger: context.logger)
            let slug = try context.parameters.require("field")
            let fields = try await self.pipelines.fields(tenant: caller.tenant, pipeline: pipeline.id, logger: context.logger)
            guard let field = fields.first(where: { $0.slug == slug }) else { throw APIError.notFound("field '\(String(slug.unicodeScalars.prefix(64)))'") }
            return FieldResource(field, pipeline: pipeline.id, whole: true)
        }
        group.post("pipelines/:pipeline/fields") { request, context in
            let caller = try context.require(.create)
            let pipeline = try await self.pipelines.resolve(tenant: caller.tenant, try context.parameters.require("pipeline"), logger: context.logger)
            let body = try await request.decodeBody(CreateField.self, context: context)
            let existing = try await self.pipelines.fields(tenant: caller.tenant, pipeline: pipeline.id, logger: context.logger)
            let (type, config) = try FieldValidator.validate(
                name: body.name, slug: body.slug, fieldType: body.field_type, aiConfig: body.ai_config, existing: existing,
                tenantSensitiveNames: caller.sensitiveNames, models: self.models, defaultModel: caller.defaultModel
            )
            let field = try await self.pipelines.addField(
                tenant: caller.tenant, pipeline: pipeline.id, name: body.name, slug: body.slug, type: type,
                aiConfig: config?.jsonValue, logger: context.logger
            )
            return EditedResponse(status: .created, response: field)
        }
    }
}
