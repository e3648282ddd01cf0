public import OneoWire
import Crypto
public import Foundation

/// Bearer tokens for the HTTP API. A token is shown once when created; the database keeps only
/// its SHA-256, so a database dump does not grant access.
public enum APIToken {
    public enum Permission: String, Sendable, Hashable, CaseIterable, Codable {
        /// List and read pipelines, records and jobs.
        case read
        /// Create and change pipelines, fields and records (which queues jobs).
        case create
    }

    /// A new random token: `oneo_` and 43 characters of URL-safe base64 (256 bits).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let encoded = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "oneo_" + encoded
    }

    public static func hash(_ token: String) -> Data {
        Data(SHA256.hash(data: Data(token.utf8)))
    }

    /// Enough of a token for an operator to recognise it in a listing, too little to use it.
    public static func displayPrefix(_ token: String) -> String { String(token.prefix(9)) }
}
