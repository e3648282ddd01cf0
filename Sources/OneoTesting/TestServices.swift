public import Foundation
public import OneoWire
public import OneoStore

/// The PostgreSQL and Redis the test command started, found through DATABASE_URL and REDIS_URL.
/// Tests fail loudly when they are missing rather than passing without them.
public enum TestServices {
    public struct Missing: Error, CustomStringConvertible {
        public let variable: String
        public var description: String { "\(self.variable) is not set: run the suite with `make test`, which starts PostgreSQL and Redis" }
    }

    public static func databaseURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else { throw Missing(variable: "DATABASE_URL") }
        return url
    }

    public static func redisURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["REDIS_URL"], !url.isEmpty else { throw Missing(variable: "REDIS_URL") }
        return url
    }

    /// The same server as DATABASE_URL, another database.
    public static func databaseURL(named name: String) throws -> String {
        guard var components = URLComponents(string: try self.databaseURL()) else { throw Missing(variable: "DATABASE_URL (unparsable)") }
        components.path = "/" + name
        guard let url = components.string else { throw Missing(variable: "DATABASE_URL (unparsable)") }
        return url
    }

    /// Where `swift build` put our executables: beside the test bundle.
    public static var binDirectory: String {
        if let configured = ProcessInfo.processInfo.environment["ONEO_BIN_DIR"] { return configured }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.path + "/oneo-ai") { return url.path }
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug"
    }

    public static func executable(_ name: String) -> String { self.binDirectory + "/" + name }

    /// A fresh directory under the system's temporary directory, for one test's files.
    public static func temporaryDirectory(_ prefix: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
