import Foundation
import Hummingbird
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore

extension Request {
    /// Decodes a JSON body, turning every decoding failure into the API's one error shape.
    func decodeBody<Body: Decodable>(_ type: Body.Type, context: APIRequestContext) async throws -> Body {
        do {
            return try await self.decode(as: type, context: context)
        } catch let error as DecodingError {
            throw APIError.invalid("request body: \(Self.describe(error))")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, code: "too_large", message: "request body over \(context.maxUploadSize) bytes")
        } catch let error as HTTPError {
            throw APIError.invalid("request body: \(error.body ?? "not valid JSON")")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "body" : path
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "\(parent == "body" ? "" : parent + ".")\(key.stringValue) is required"
        case .typeMismatch(let type, let context): return "\(path(context)) must be \(type)"
        case .valueNotFound(let type, let context): return "\(path(context)) must be \(type), not null"
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "not valid JSON"
        }
    }

    /// A positive integer query parameter within bounds, with a default.
    func queryInteger(_ name: String, default value: Int, range: ClosedRange<Int>) throws(APIError) -> Int {
        guard let text = self.uri.queryParameters[name[...]] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.invalid("query parameter '\(name)' must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    func queryString(_ name: String) -> String? {
        self.uri.queryParameters[name[...]].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
    }
}
