import Foundation
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import Testing

@Suite("money")
struct MoneyTests {
    @Test("cost rounds each side up to a whole micro-dollar; cached prompt tokens at their price")
    func costRoundsUp() throws {
        let mini = try #require(ModelCatalog.builtIn.model("gpt-4o-mini"))
        #expect(mini.cost(promptTokens: 1, completionTokens: 0) == Microdollars(1))
        #expect(mini.cost(promptTokens: 1_000_000, completionTokens: 1_000_000) == Microdollars(750_000))
        #expect(mini.cost(promptTokens: 0, completionTokens: 0) == .zero)
        // Half the prompt cached: 500,000 × $0.15 + 500,000 × $0.075 per million, + output.
        #expect(mini.cost(promptTokens: 1_000_000, cachedTokens: 500_000, completionTokens: 0) == Microdollars(75_000 + 37_500))
        // More cached than sent is held to the prompt; a model without a cached price uses the input price.
        #expect(mini.cost(promptTokens: 10, cachedTokens: 99, completionTokens: 0) == mini.cost(promptTokens: 10, cachedTokens: 10, completionTokens: 0))
        let turbo = try #require(ModelCatalog.builtIn.model("gpt-4-turbo"))
        #expect(turbo.cost(promptTokens: 1_000, cachedTokens: 1_000, completionTokens: 0) == turbo.cost(promptTokens: 1_000, completionTokens: 0))
    }

    @Test("dated snapshots take their model's entry; an unknown model has none; overrides replace and add")
    func catalogLookup() throws {
        let catalog = ModelCatalog.builtIn
        #expect(catalog.model("gpt-4o-mini-2024-07-18") == catalog.model("gpt-4o-mini"))
        #expect(catalog.model("gpt-4o-2024-08-06") == catalog.model("gpt-4o"))
        #expect(catalog.model("gpt-4-0613") == catalog.model("gpt-4"))
        #expect(catalog.model("some-local-model") == nil)
        #expect(catalog.model("gpt-4o-mini-evil") == nil, "only a dated suffix names a snapshot")
        #expect(catalog.model("gpt-4o-mini-") == nil && catalog.model("gpt-4o-mini--") == nil && catalog.model("gpt-4o-12") == nil)
        // A snapshot priced differently from its model has its own entry, which wins.
        #expect(catalog.model("gpt-4o-2024-05-13")?.input == Microdollars(5_000_000))
        #expect(catalog.model("gpt-3.5-turbo-0613")?.input == Microdollars(1_500_000))
        #expect(catalog.model("gpt-5")?.tokenParameter == .maxCompletionTokens)
        #expect(catalog.model("gpt-5")?.temperature == false)
        #expect(catalog.model("gpt-4o-mini")?.tokenParameter == .maxTokens)
        let file = #"{"models": {"local-llama": {"input": 0, "output": 0}, "gpt-4o-mini": {"input": 1, "output": 2}, "gpt-5": {"input": 3, "output": 4}}}"#
        let merged = catalog.merging(try JSONDecoder().decode(ModelCatalog.self, from: Data(file.utf8)))
        #expect(merged.model("local-llama")?.cost(promptTokens: 1_000, completionTokens: 1_000) == .zero)
        #expect(merged.model("gpt-4o-mini")?.input == Microdollars(1))
        #expect(merged.model("gpt-4o") == catalog.model("gpt-4o"))
        // An override of prices alone keeps the model's parameters.
        #expect(merged.model("gpt-5")?.tokenParameter == .maxCompletionTokens && merged.model("gpt-5")?.temperature == false)
        #expect(merged.model("gpt-5")?.input == Microdollars(3))
        // A price no list comes near is refused, as is a negative one.
        for bad in [
            #"{"models": {"x": {"input": -1, "output": 0}}}"#, #"{"models": {"x": {"input": 0, "output": 9999999999999}}}"#,
            #"{"models": {"x": {"input": 1, "cached_input": 2, "output": 0}}}"#, #"{"tools": {"web_search": {"per_call": -3}}}"#,
        ] {
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(ModelCatalog.self, from: Data(bad.utf8)) }
        }
    }

    @Test("cents for display round half up; the dollar text is exact", arguments: [
        (Int64(0), Int64(0), "$0.000000"), (4_999, 0, "$0.004999"), (5_000, 1, "$0.005000"), (1_234_567, 123, "$1.234567"),
    ])
    func display(micros: Int64, cents: Int64, text: String) {
        #expect(Microdollars(micros).roundedCents == cents)
        #expect(Microdollars(micros).description == text)
    }
}

@Suite("wire frames")
struct FrameTests {
    struct Message: Codable, Equatable { let type: String; let value: Int }

    @Test("a frame is a big-endian length and a JSON body, and decodes back")
    func roundTrip() throws {
        let bytes = try Frame.encode(Message(type: "ping", value: 7))
        let length = try Frame.bodyLength(header: Array(bytes.prefix(4)))
        #expect(length == bytes.count - 4)
        #expect(try Frame.decode(Message.self, body: Array(bytes.dropFirst(4))) == Message(type: "ping", value: 7))
    }

    @Test("an announced length over the cap is refused before reading the body")
    func oversized() {
        #expect(throws: WireError.self) { try Frame.bodyLength(header: [0x7F, 0xFF, 0xFF, 0xFF]) }
    }

    @Test("a malformed body is a typed error, not a crash")
    func malformed() {
        #expect(throws: WireError.self) { try Frame.decode(Message.self, body: Array("{\"type\":".utf8)) }
    }

    @Test("frames cross a real socketpair intact")
    func socketPair() throws {
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let left = FrameSocket(descriptor: fds[0])
        let right = FrameSocket(descriptor: fds[1])
        try left.send(Message(type: "bootstrap", value: 42))
        #expect(try right.receive(Message.self) == Message(type: "bootstrap", value: 42))
    }
}

@Suite("configuration")
struct ConfigurationTests {
    @Test("DATABASE_URL parses TCP and Unix-socket forms; the password never prints")
    func databaseURL() throws {
        let tcp = try DatabaseSettings(url: "postgres://app:s3cret@db.internal:6432/crm?sslmode=require")
        #expect(tcp.endpoint == .tcp(host: "db.internal", port: 6432, requireTLS: true))
        #expect(tcp.username == "app" && tcp.password == "s3cret" && tcp.database == "crm")
        #expect(!tcp.description.contains("s3cret"))
        let socket = try DatabaseSettings(url: "postgresql://oneo@/oneo?host=/tmp/pg")
        #expect(socket.endpoint == .unixSocket(path: "/tmp/pg/.s.PGSQL.5432"))
        #expect(throws: ConfigurationError.self) { try DatabaseSettings(url: "mysql://x@y/z") }
    }

    @Test("REDIS_URL parses redis:// and unix://")
    func redisURL() throws {
        #expect(try RedisSettings(url: "redis://127.0.0.1:6380").endpoint == .tcp(host: "127.0.0.1", port: 6380))
        #expect(try RedisSettings(url: "unix:///run/redis.sock").endpoint == .unixSocket(path: "/run/redis.sock"))
        #expect(throws: ConfigurationError.self) { try RedisSettings(url: "http://x") }
    }

    @Test("ai_config takes the reference's keys with defaults, and names the key at fault")
    func aiConfig() throws {
        let config = try AIFieldConfig(validating: ["prompt": "Hi {name}", "trigger_fields": ["name"], "max_tokens": 50])
        #expect(config.temperature == 0.3 && config.maxTokens == 50 && config.autoRegenerate && config.cacheDuration == 3600)
        #expect(config.triggerFields == ["name"])
        for (bad, key) in [
            (["prompt": "x", "temperature": 3] as JSONValue, "temperature"),
            (["prompt": "x", "max_tokens": "lots"], "max_tokens"),
            (["prompt": "x", "allowed_tools": ["telnet"]], "allowed_tools"),
            (["prompt": "x", "output_type": "xml"], "output_type"),
            (["prompt": "x", "excluded_fields": "ssn"], "excluded_fields"),
            (["prompt": ""], "prompt"),
            (["prompt": "x", "promt": "y"], "promt"),
        ] {
            #expect(throws: FieldConfigError.self) { try AIFieldConfig(validating: bad) }
            do {
                _ = try AIFieldConfig(validating: bad)
            } catch {
                #expect(error.key == key)
            }
        }
        #expect(try AIFieldConfig(validating: config.jsonValue) == config, "the stored form reads back the same")
    }
}

@Suite("migrations")
struct SQLScriptTests {
    @Test("a script splits on semicolons outside strings, comments and dollar quotes")
    func splits() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (x text DEFAULT 'a;b');
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
            SELECT 1
            """
        #expect(SQLScript.statements(script) == [
            "CREATE TABLE a (x text DEFAULT 'a;b')",
            "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
            "SELECT 1",
        ])
    }

    @Test("the embedded migrations split into statements")
    func embedded() {
        let statements = Migrator.migrations.flatMap { SQLScript.statements($0.sql) }
        #expect(statements.count > 10)
        #expect(statements.allSatisfy { !$0.hasPrefix("--") })
    }
}

@Suite("secrets")
struct SecretTests {
    @Test("a sealed provider key opens for its tenant only, and the master key file is created private")
    func sealing() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("oneo-key-\(UInt32.random(in: 0 ... .max))/master.key").path
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let sealer = try KeySealer(masterKeyFile: path)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)
        let sealed = try sealer.seal(ProviderKey("test-key-value"), tenant: TenantID(1))
        #expect(!String(decoding: sealed, as: UTF8.self).contains("test-key-value"))
        #expect(try sealer.open(sealed, tenant: TenantID(1)).secret == "test-key-value")
        #expect(throws: SecretError.self) { try sealer.open(sealed, tenant: TenantID(2)) }
        #expect(try KeySealer(masterKeyFile: path).open(sealed, tenant: TenantID(1)).secret == "test-key-value", "the key persists")
    }

    @Test("processes creating the master key at once all end with the same key, none with an error or a short file")
    func concurrentCreation() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("oneo-key-\(UInt32.random(in: 0 ... .max))/master.key").path
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let sealed = try await withThrowingTaskGroup(of: Data.self) { group in
            for _ in 0..<8 {
                group.addTask { try KeySealer(masterKeyFile: path).seal(ProviderKey("test-key-value"), tenant: TenantID(1)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let reader = try KeySealer(masterKeyFile: path)
        for box in sealed { #expect(try reader.open(box, tenant: TenantID(1)).secret == "test-key-value") }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
        #expect(leftovers == ["master.key"], "no temporary file is left: \(leftovers)")
    }

    @Test("a provider key never prints")
    func redaction() {
        let key = ProviderKey("test-key-value")
        #expect("\(key)" == "<redacted>")
        #expect(String(reflecting: key) == "<redacted>")
    }

    @Test("API tokens are random, prefixed, and stored as their SHA-256 only")
    func tokens() {
        let a = APIToken.generate()
        let b = APIToken.generate()
        #expect(a != b && a.hasPrefix("oneo_") && a.count == 48)
        #expect(APIToken.hash(a).count == 32 && APIToken.hash(a) == APIToken.hash(a))
    }
}
