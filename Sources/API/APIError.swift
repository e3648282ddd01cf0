public import Hummingbird
import Foundation
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore

/// The one error → HTTP mapping: every failure at the API edge becomes
/// `{"code": "...", "message": "..."}` with a stable code. Messages never carry record values.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String

    public init(_ status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.status.code) \(self.code): \(self.message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONEncoder().encode(["code": self.code, "message": self.message])
        return Response(
            status: self.status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    static func notFound(_ what: String) -> APIError { APIError(.notFound, code: "not_found", message: "\(what) not found") }
    static func invalid(_ message: String) -> APIError { APIError(.unprocessableContent, code: "invalid", message: message) }
    static func conflict(_ message: String) -> APIError { APIError(.conflict, code: "conflict", message: message) }
    static func internalFailure(_ message: String) -> APIError { APIError(.internalServerError, code: "internal", message: message) }
    static let unauthenticated = APIError(.unauthorized, code: "unauthenticated", message: "send 'Authorization: Bearer <token>' with a valid API token")
    static let tenantSuspended = APIError(.forbidden, code: "tenant_suspended", message: "this token's tenant is suspended; an operator can activate it")
    static func forbidden(_ permission: APIToken.Permission) -> APIError {
        APIError(.forbidden, code: "forbidden", message: "this token lacks the '\(permission.rawValue)' permission")
    }
}
