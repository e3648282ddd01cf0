import Hummingbird
import Logging
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO

/// The last word on errors at the API edge: whatever a route throws leaves as the one JSON shape
/// (`APIError`). Hummingbird's own errors keep their status; a value PostgreSQL refuses (SQLSTATE
/// class 22, data exception) is the caller's 422, never a 500; anything else is a 500 with a
/// generic message, its detail only in the log (without row values: `SafeErrorDescription`).
struct ErrorShapeMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw APIError(error.status, code: Self.code(for: error.status), message: error.body ?? error.status.reasonPhrase)
        } catch let error as PSQLError where error.serverInfo?[.sqlState]?.hasPrefix("22") == true {
            context.logger.notice("a request's value was refused by PostgreSQL", metadata: ["error": "\(SafeErrorDescription.of(error))"])
            throw APIError.invalid("a value in the request cannot be stored (PostgreSQL refused it: SQLSTATE \(error.serverInfo?[.sqlState] ?? "22"))")
        } catch let error as FieldConfigError {
            // A stored field's config that can no longer be applied: the tenant can edit it.
            throw APIError.conflict("a stored field config cannot be used: \(error.description)")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
            throw APIError.internalFailure("internal error; the API log has the detail")
        }
    }

    private static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "not_found"
        case .contentTooLarge: return "too_large"
        case .unauthorized: return "unauthenticated"
        case .forbidden: return "forbidden"
        case .methodNotAllowed: return "method_not_allowed"
        case .serviceUnavailable: return "overloaded"
        case .requestTimeout: return "timeout"
        default: return status.code >= 500 ? "internal" : "invalid"
        }
    }
}
