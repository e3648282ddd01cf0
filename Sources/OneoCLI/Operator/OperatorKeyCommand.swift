import ArgumentParser
import Foundation
import OneoWire
import OneoStore
import OneoCore

/// `oneo-ai operator set-key`: the reference's global fallback key, stored sealed. No tenant uses
/// it unless set to (`tenant set-key-source SLUG operator`), and then it is charged to that
/// tenant like its own key.
struct OperatorKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operator", abstract: "The operator's own settings.", subcommands: [SetKey.self]
    )

    struct SetKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-key",
            abstract: "Store the operator's fallback provider key (sealed) and restart the processors of the tenants that use it.",
            discussion: "Only tenants set to it use it (oneo-ai tenant set-key-source SLUG operator). The key is read from a file, never argv or env."
        )

        @OptionGroup var instance: InstanceOptions
        @Option(help: "File holding the provider API key (its first line is used).") var apiKeyFile: String
        @Option(help: "The OpenAI-compatible base URL (including /v1) this key may be sent to; tenants using the key call it, never their own.")
        var baseURL: String = "https://api.openai.com/v1"

        func validate() throws {
            try BaseURL.check(self.baseURL, option: "--base-url")
        }

        func run() async throws {
            let key = try ProviderKeyFile.read(self.apiKeyFile)
            let baseURL = self.baseURL
            let sealer = try KeySealer(masterKeyFile: self.instance.masterKeyPath)
            let users = try await withDatabase(self.instance) { database, logger in
                let registry = TenantRegistry(database: database, sealer: sealer)
                try await registry.setOperatorKey(key, baseURL: baseURL, logger: logger)
                return try await registry.tenantsUsingOperatorKey(logger: logger)
            }
            print("operator key stored sealed; \(users.count) tenant(s) use it\(users.isEmpty ? "" : ": " + users.joined(separator: ", "))")
            // Each such processor starts again with the new key (the others are not touched).
            for slug in users { try await restartRunningProcessor(slug, instance: self.instance) }
        }
    }
}
