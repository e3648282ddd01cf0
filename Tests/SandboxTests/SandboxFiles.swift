import Foundation

/// The repository's `sandbox/` folder and the built `oneo-tool`, found from this file's path.
enum SandboxFiles {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func policy(_ tool: String) throws -> Data {
        try Data(contentsOf: Self.policyURL(tool))
    }

    static func policyURL(_ tool: String) -> URL {
        Self.repository.appendingPathComponent("sandbox/\(tool).policy")
    }
}
