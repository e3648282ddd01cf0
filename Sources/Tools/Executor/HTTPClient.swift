import CCurl
import Foundation
import Glibc

/// One libcurl easy handle, owned here, for one request at a time. It never resolves a name or
/// opens a socket: the connection comes from `Egress`, and libcurl is told the host resolves to
/// the address that connection reaches (so TLS still checks the URL's host name).
final class HTTPClient {
    private let handle: UnsafeMutableRawPointer


    struct Response {
        let status: Int
        let body: [UInt8]
    }

    /// Once per process, before any handle.
    static func setUp() {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }

    init() throws {
        guard let handle = curl_easy_init() else { throw ToolFailure(message: "libcurl could not make a handle") }
        self.handle = handle
    }

    deinit {
        curl_easy_cleanup(self.handle)
    }

    /// Where the response body goes, up to `limit` bytes; past it the transfer is stopped.
    private final class Sink {
        var bytes: [UInt8] = []
        let limit: Int
        var overflowed = false
        /// The connection the broker gave, handed to libcurl once.
        var descriptor: Int32

        init(limit: Int, descriptor: Int32) {
            self.limit = limit
            self.descriptor = descriptor
        }
    }

    /// `url` over a connection `egress` makes; only http and https, no redirects, the whole
    /// exchange within `timeoutSeconds`, a body of at most `limit` bytes.
    func perform(
        method: String, url: String, headers: [String] = [], body: [UInt8]? = nil,
        limit: Int, timeoutSeconds: Int, egress: Egress
    ) throws -> Response {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = components.host, !host.isEmpty
        else { throw ToolFailure(message: "not an http(s) URL") }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        let connection = try egress.connect(host: host, port: port)
        let sink = Sink(limit: limit, descriptor: connection.descriptor)
        defer { if sink.descriptor >= 0 { close(sink.descriptor) } }

        curl_easy_reset(self.handle)
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer { strings.forEach { free($0) } }
        func text(_ option: CURLoption, _ value: String) throws {
            let copy = strdup(value)!
            strings.append(copy)
            try self.check(oneo_curl_set_pointer(self.handle, option, copy), "setting \(option)")
        }
        func number(_ option: CURLoption, _ value: Int) throws {
            try self.check(oneo_curl_set_long(self.handle, option, value), "setting \(option)")
        }
        try text(CURLOPT_URL, url)
        try text(CURLOPT_PROTOCOLS_STR, "http,https")
        try number(CURLOPT_FOLLOWLOCATION, 0)
        try number(CURLOPT_NOSIGNAL, 1)
        try number(CURLOPT_TIMEOUT, timeoutSeconds)
        try number(CURLOPT_FORBID_REUSE, 1)
        try number(CURLOPT_MAXFILESIZE, limit)
        try text(CURLOPT_CAINFO, "/etc/ssl/certs/ca-certificates.crt")
        try text(CURLOPT_USERAGENT, "oneo-ai-tools")
        // The name resolves to where the broker connected: no DNS of our own.
        let literal = connection.address.contains(":") ? "[\(connection.address)]" : connection.address
        let resolve = curl_slist_append(nil, "\(host):\(port):\(literal)")
        defer { curl_slist_free_all(resolve) }
        try self.check(oneo_curl_set_pointer(self.handle, CURLOPT_RESOLVE, UnsafeRawPointer(resolve)), "setting the address")
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for header in headers { headerList = curl_slist_append(headerList, header) }
        if let headerList { try self.check(oneo_curl_set_pointer(self.handle, CURLOPT_HTTPHEADER, UnsafeRawPointer(headerList)), "setting headers") }
        // libcurl reads the body during perform: a copy that lives until then.
        let payload = UnsafeMutableRawPointer.allocate(byteCount: max(1, body?.count ?? 0), alignment: 1)
        defer { payload.deallocate() }
        if let body {
            body.withUnsafeBytes { raw in
                if let base = raw.baseAddress { payload.copyMemory(from: base, byteCount: body.count) }
            }
            try number(CURLOPT_POSTFIELDSIZE, body.count)
            try self.check(oneo_curl_set_pointer(self.handle, CURLOPT_POSTFIELDS, UnsafeRawPointer(payload)), "setting the body")
        }
        if method != "GET" && method != "POST" { try text(CURLOPT_CUSTOMREQUEST, method) }

        let context = Unmanaged.passUnretained(sink).toOpaque()
        try self.check(oneo_curl_set_write(self.handle, { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard sink.bytes.count + length <= sink.limit else {
                sink.overflowed = true
                return 0
            }
            if let data { sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length)) }
            return length
        }, context), "setting the writer")
        try self.check(oneo_curl_set_open_socket(self.handle, { context, _, _ in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            // One connection per request: a second attempt (a retry to another address) fails.
            defer { sink.descriptor = -1 }
            return sink.descriptor >= 0 ? sink.descriptor : -1
        }, context), "setting the socket")
        try self.check(oneo_curl_set_already_connected(self.handle), "setting the socket")

        let code = withExtendedLifetime(sink) { curl_easy_perform(self.handle) }
        // Past the cap as it arrived, or announced past it (Content-Length): the same answer.
        if sink.overflowed || code == CURLE_FILESIZE_EXCEEDED { throw ToolFailure(message: "the response was over \(limit) bytes") }
        guard code == CURLE_OK else { throw ToolFailure(message: "the request failed: \(String(cString: curl_easy_strerror(code)))") }
        var status = 0
        _ = oneo_curl_response_code(self.handle, &status)
        return Response(status: status, body: sink.bytes)
    }

    private func check(_ code: CURLcode, _ step: String) throws {
        guard code == CURLE_OK else { throw ToolFailure(message: "\(step): \(String(cString: curl_easy_strerror(code)))") }
    }
}
