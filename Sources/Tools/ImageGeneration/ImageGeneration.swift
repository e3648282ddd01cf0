import Foundation
import OneoWire

/// `image_generation {prompt, size?}`: one image from the tenant's provider
/// (`POST {base_url}/images/generations`), with the key the router handed over for this one
/// request and forgets after. The image becomes an artifact of the job; the model is told its
/// name and size only.
struct ImageGeneration {
    let client: HTTPClient

    static let promptBytes = 4000
    /// The provider's answer, base64 and all; the image itself must fit an artifact.
    static let responseBytes = 1 << 20


    func run(arguments: JSONValue, credential: ToolCredential?, egress: Egress) throws -> JSONValue {
        guard let credential else { throw ToolFailure(message: "no provider was handed over for this call") }
        guard case .string(let prompt)? = arguments["prompt"], !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ToolFailure(message: "image_generation takes {\"prompt\": \"…\", \"size\": \"\(ToolCatalog.imageSizes.joined(separator: "|"))\"}")
        }
        guard prompt.utf8.count <= Self.promptBytes else { throw ToolFailure(message: "the prompt is over \(Self.promptBytes) bytes") }
        var size = ToolCatalog.imageSizes[0]
        if case .string(let asked)? = arguments["size"] {
            guard ToolCatalog.imageSizes.contains(asked) else { throw ToolFailure(message: "size is one of \(ToolCatalog.imageSizes.joined(separator: ", "))") }
            size = asked
        }
        let base = credential.baseURL.hasSuffix("/") ? String(credential.baseURL.dropLast()) : credential.baseURL
        // JPEG at low quality: a real 1024×1024 image then fits the job's artifact allowance.
        let request: JSONValue = [
            "model": .string(ToolCatalog.imageModel), "prompt": .string(prompt), "n": 1, "size": .string(size),
            "quality": "low", "output_format": "jpeg", "output_compression": 70,
        ]
        let body = try JSONEncoder().encode(request)
        let response = try self.client.perform(
            method: "POST", url: base + "/images/generations",
            headers: ["Content-Type: application/json", "Authorization: Bearer \(credential.key)"],
            body: Array(body), limit: Self.responseBytes, timeoutSeconds: 120, egress: egress
        )
        guard response.status == 200 else {
            throw ToolFailure(message: "the provider answered HTTP \(response.status)")
        }
        // From here the provider made (and billed) an image: what goes wrong now is a result
        // that says so, not a tool error, so the call is paid like one that succeeded.
        func unusable(_ reason: String) -> JSONValue { ["size": .string(size), "error": .string(reason), "artifacts": []] }
        guard let parsed = try? JSONValue.parse(response.body), case .array(let items)? = parsed["data"],
              case .string(let encoded)? = items.first?["b64_json"], let bytes = Data(base64Encoded: encoded)
        else { return unusable("the provider's answer held no image") }
        guard bytes.count <= JobArtifact.maximumTotalBytes else {
            return unusable("the image is \(bytes.count) bytes; a job keeps at most \(JobArtifact.maximumTotalBytes)")
        }
        guard let (mediaType, suffix) = Self.imageType(Array(bytes.prefix(12))) else {
            return unusable("the provider's answer was not a PNG, JPEG or WebP image")
        }
        let name = "image-\(String(UInt32.random(in: 0 ... .max), radix: 16)).\(suffix)"
        return [
            "size": .string(size),
            "artifacts": [[
                "name": .string(name), "media_type": .string(mediaType), "size": .integer(Int64(bytes.count)),
                "data": .string(bytes.base64EncodedString()),
            ]],
        ]
    }

    /// The type a file's first bytes say it is, of the three we keep.
    static func imageType(_ head: [UInt8]) -> (mediaType: String, suffix: String)? {
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return ("image/png", "png") }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return ("image/jpeg", "jpg") }
        if head.count >= 12, head.starts(with: Array("RIFF".utf8)), Array(head[8..<12]) == Array("WEBP".utf8) { return ("image/webp", "webp") }
        return nil
    }
}
