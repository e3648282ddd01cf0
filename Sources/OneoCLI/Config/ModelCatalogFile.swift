import Foundation
import OneoWire

/// An operator's model catalog file (`serve --models FILE`), read with errors that name the file
/// and what is wrong in it.
enum ModelCatalogFile {
    static let maximumBytes = 64 << 10

    static func load(_ path: String) throws -> ModelCatalog {
        // A regular file of at most 64 KiB, checked before it is read (not a FIFO, not
        // /dev/zero): the catalog goes to every child in its bootstrap frame.
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let attributes, attributes[.type] as? FileAttributeType == .typeRegular else {
            throw ConfigurationError(key: "--models \(path)", problem: "is not a readable regular file")
        }
        guard let size = attributes[.size] as? Int, size <= Self.maximumBytes else {
            throw ConfigurationError(key: "--models \(path)", problem: "is larger than \(Self.maximumBytes / 1024) KiB")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigurationError(key: "--models \(path)", problem: "cannot be read")
        }
        guard data.count <= Self.maximumBytes else { throw ConfigurationError(key: "--models \(path)", problem: "is larger than \(Self.maximumBytes / 1024) KiB") }
        do {
            return try JSONDecoder().decode(ModelCatalog.self, from: data)
        } catch let error as DecodingError {
            throw ConfigurationError(key: "--models \(path)", problem: Self.describe(error))
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context): return "\(Self.path(context.codingPath + [key])) is required"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(Self.path(context.codingPath)) has the wrong type"
        case .dataCorrupted(let context): return "\(Self.path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "is not a model catalog"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "the file" : keys.map(\.stringValue).joined(separator: ".")
    }
}
