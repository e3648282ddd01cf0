import Foundation
import OneoWire
import OneoStore
import OneoCore
import OneoTesting
import StackControl
import Testing

/// What a client sees at the edge: authentication, errors in one JSON shape, DRF-style lists.
@Suite("API contract", .timeLimit(.minutes(3)))
struct APIContractTests {
    @Test("bad input gets a JSON error with a code and a message, never a crash")
    func errorsAreJSON() async throws {
        try await TestStack.with { stack in
            let anonymous = JSONClient(baseURL: stack.api.baseURL)
            let unauthenticated = try await anonymous.get("/ai-jobs/")
            #expect(unauthenticated.status == 401)
            #expect(unauthenticated["code"] == "unauthenticated")

            let wrongToken = try await JSONClient(baseURL: stack.api.baseURL, token: "oneo_not-a-token").get("/ai-jobs/")
            #expect(wrongToken.status == 401)

            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            let duplicate = try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"])
            #expect(duplicate.status == 409)
            #expect(duplicate["code"] == "conflict")

            let badSlug = try await stack.api.post("/pipelines/", ["name": "X", "slug": "Not A Slug"])
            #expect(badSlug.status == 422)
            let missing = try await stack.api.post("/pipelines/", ["name": "X"])
            #expect(missing.status == 422)
            #expect(missing["message"]?.stringValue?.contains("slug") == true)

            let unknownPipeline = try await stack.api.get("/pipelines/nope/")
            #expect(unknownPipeline.status == 404)
            #expect(unknownPipeline["code"] == "not_found")

            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
            let unknownPlaceholder = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "S", "slug": "s", "field_type": "ai_generated", "ai_config": ["prompt": "Hi {nmae}"],
            ])
            #expect(unknownPlaceholder.status == 422)
            #expect(unknownPlaceholder["message"]?.stringValue?.contains("{nmae}") == true)
            #expect(unknownPlaceholder["message"]?.stringValue?.contains("position 3") == true)
            let unclosed = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "S", "slug": "s", "field_type": "ai_generated", "ai_config": ["prompt": "Hi {name"],
            ])
            #expect(unclosed.status == 422)
            let badKey = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "S", "slug": "s", "field_type": "ai_generated", "ai_config": ["prompt": "Hi {name}", "temprature": 1],
            ])
            #expect(badKey.status == 422)
            #expect(badKey["message"]?.stringValue?.contains("temprature") == true)

            let unknownField = try await stack.api.post("/pipelines/leads/records/", ["data": ["nmae": "x"]])
            #expect(unknownField.status == 422)
            let notJSON = try await stack.api.send("POST", "/pipelines/leads/records/", .string("{"))
            #expect(notJSON.status == 422)
            let unknownRecord = try await stack.api.get("/pipelines/leads/records/999999/")
            #expect(unknownRecord.status == 404)
            #expect(stack.serve.isRunning, "serve survived every bad request")
        }
    }

    @Test("the jobs list pages and filters in Django REST framework's shape")
    func jobsListPagesAndFilters() async throws {
        try await TestStack.with(processorHeld: true) { stack in
            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Summary", "slug": "summary", "field_type": "ai_generated", "ai_config": ["prompt": "About {name}"]]).status == 201)
            for index in 0..<5 {
                #expect(try await stack.api.post("/pipelines/leads/records/", ["data": ["name": .string("P\(index)")]]).status == 201)
            }
            let first = try await stack.api.get("/ai-jobs/?page_size=2")
            #expect(first["count"]?.integerValue == 5)
            #expect(first["results"]?.arrayValue?.count == 2)
            #expect(first["previous"] == .null)
            #expect(first["next"]?.stringValue?.contains("page=2") == true)
            let last = try await stack.api.get("/ai-jobs/?page_size=2&page=3")
            #expect(last["results"]?.arrayValue?.count == 1)
            #expect(last["next"] == .null)
            #expect(try await stack.api.get("/ai-jobs/?status=pending&pipeline=leads&field_name=summary")["count"]?.integerValue == 5)
            #expect(try await stack.api.get("/ai-jobs/?status=completed")["count"]?.integerValue == 0)
            #expect(try await stack.api.get("/ai-jobs/?field_name=other")["count"]?.integerValue == 0)
            #expect(try await stack.api.get("/ai-jobs/?status=bogus").status == 422)
        }
    }
}
