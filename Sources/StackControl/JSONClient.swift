public import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
public import OneoWire

/// HTTP with JSON in and out, as an API client would speak to us.
public struct JSONClient: Sendable {
    public struct Response: Sendable {
        public let status: Int
        public let body: JSONValue

        public subscript(key: String) -> JSONValue? { self.body.objectValue?[key] }
    }

    public let baseURL: String
    public let token: String?
    public let http: HTTPClient

    public init(baseURL: String, token: String? = nil, http: HTTPClient = .shared) {
        self.baseURL = baseURL
        self.token = token
        self.http = http
    }

    public func get(_ path: String) async throws -> Response { try await self.send("GET", path, nil) }
    public func post(_ path: String, _ body: JSONValue) async throws -> Response { try await self.send("POST", path, body) }
    public func patch(_ path: String, _ body: JSONValue) async throws -> Response { try await self.send("PATCH", path, body) }

    /// A GET whose body is bytes, not JSON (a download), with its headers.
    public func download(_ path: String) async throws -> (status: Int, headers: [String: String], bytes: [UInt8]) {
        var request = HTTPClientRequest(url: self.baseURL + path)
        if let token = self.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await self.http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return (Int(response.status.code), headers, Array(bytes.readableBytesView))
    }

    public func send(_ method: String, _ path: String, _ body: JSONValue?) async throws -> Response {
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.method = .init(rawValue: method)
        if let token = self.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: Array(body.compactJSON.utf8)))
        }
        let response = try await self.http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let json = bytes.readableBytes == 0 ? JSONValue.null : ((try? JSONValue.parse(Array(bytes.readableBytesView))) ?? .string(String(buffer: bytes)))
        return Response(status: Int(response.status.code), body: json)
    }
}
