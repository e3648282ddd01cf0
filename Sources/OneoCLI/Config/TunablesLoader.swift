import Configuration
import OneoWire
import SystemPackage

/// Reads the engine's tunables: the defaults of `EngineTunables`, then a JSON file (`--config`,
/// nested objects: `{"queue": {"lease_seconds": 300}}`), then `ONEO_*` environment variables
/// (`ONEO_QUEUE_LEASE_SECONDS=300`); the caller applies flags last. A value that is present but
/// not a whole number, or out of its range, is an error naming the key and where it came from.
enum TunablesLoader {
    static func load(file: String?, environment: [String: String]) async throws -> EngineTunables {
        var tunables = EngineTunables()
        if let file {
            let reader = ConfigReader(provider: try await FileProvider<JSONSnapshot>(filePath: FilePath(file), allowMissing: false))
            for key in EngineTunables.Key.allCases {
                if let value = try Self.integer(reader, key.rawValue, source: file) { try tunables.set(key, value, from: file) }
            }
        }
        let variables = ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: environment))
        for key in EngineTunables.Key.allCases {
            let name = Self.variable(for: key)
            if let value = try Self.integer(variables, "oneo." + key.rawValue, source: name) { try tunables.set(key, value, from: name) }
        }
        try tunables.validate()
        return tunables
    }

    /// `queue.lease_seconds` → `ONEO_QUEUE_LEASE_SECONDS`, as the environment provider maps it.
    static func variable(for key: EngineTunables.Key) -> String {
        "ONEO_" + key.rawValue.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
    }

    /// The value at `key`, nil when absent; a value present in another shape is an error (the
    /// reader alone would return nil for it, as if it were absent).
    private static func integer(_ reader: ConfigReader, _ key: String, source: String) throws -> Int? {
        let configKey = ConfigKey(key)
        if let value = reader.int(forKey: configKey) { return value }
        if let text = reader.string(forKey: configKey) {
            throw ConfigurationError(key: "\(key) (\(source))", problem: "is '\(text.prefix(40))', not a whole number")
        }
        if reader.double(forKey: configKey) != nil || reader.bool(forKey: configKey) != nil {
            throw ConfigurationError(key: "\(key) (\(source))", problem: "is not a whole number")
        }
        return nil
    }
}
