// swift-tools-version:6.1
import PackageDescription

// The same settings on every target, as Hummingbird and PostgresNIO do.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "oneo-ai",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "oneo-ai", targets: ["OneoCLI"]),
        .executable(name: "oneo-ai-sim", targets: ["OneoSim"]),
        .executable(name: "oneo-tool", targets: ["Tools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        // C libraries and shims: one target each, one Swift type owns each handle.
        .target(name: "CProcess", swiftSettings: swiftSettings),
        // The jail: namespaces, a root built from nothing, rlimits, seccomp before execve.
        .target(name: "CSandbox", swiftSettings: swiftSettings),
        .systemLibrary(
            name: "CSeccomp",
            pkgConfig: "libseccomp",
            providers: [.apt(["libseccomp-dev"])]
        ),
        // libcurl and libpq: the executors' blocking clients (web search and images; file search).
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CPostgresClient",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),

        // Split by who needs it (the never-list in scripts/check-imports.sh keeps it so):
        // the wire is what every process speaks, and all an executor links;
        .target(
            name: "OneoWire",
            dependencies: [
                "CProcess",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            resources: [.embedInCode("Money/models.json")],
            swiftSettings: swiftSettings
        ),
        // the prompt is template, formatter and guard: the API (preview) and processors only;
        .target(
            name: "OneoPrompt",
            dependencies: ["OneoWire"],
            swiftSettings: swiftSettings
        ),
        // the store is schema, migrations, roles, the job-state SQL and the tenant registry
        // (sealed keys, token hashes): never a processor's;
        .target(
            name: "OneoStore",
            dependencies: [
                "OneoWire", "OneoCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            resources: [.embedInCode("Schema/Migrations"), .embedInCode("Schema/roles.sql")],
            swiftSettings: swiftSettings
        ),
        // and the core keeps secrets (sealing keys, API tokens) and the Redis cache.
        // Redis through hiredis: the cache's blocking connection and its per-tenant ACL users. Linked
        // by the processors, the API (its health check) and the supervisor (which applies the ACLs).
        .target(
            name: "OneoRedis",
            dependencies: ["OneoWire", "CHiredis"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OneoCore",
            dependencies: [
                "OneoWire",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QueueManager",
            dependencies: [
                "OneoWire", "OneoStore", "OneoCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Processor",
            dependencies: [
                "OneoWire", "OneoPrompt", "OneoRedis",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "API",
            dependencies: [
                "OneoWire", "OneoPrompt", "OneoStore", "OneoCore", "OneoRedis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Supervisor",
            dependencies: [
                "OneoSandbox", "CSandbox",
                "OneoWire", "OneoStore", "OneoCore", "OneoRedis",
                "CProcess",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ProviderSimulator",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Executables: thin @mains that parse arguments and run services.
        .executableTarget(
            name: "OneoCLI",
            dependencies: [
                "OneoWire", "OneoStore", "OneoCore", "OneoRedis", "Supervisor", "API", "QueueManager", "Processor", "Benchmark", "CProcess",
                "OneoSandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Sandbox policies as data: parsed, built into a seccomp program, turned into jails.
        .target(
            name: "OneoSandbox",
            dependencies: ["CSandbox", "CSeccomp"],
            swiftSettings: swiftSettings
        ),
        // The tool executors: single-threaded, the wire and the sandbox, nothing else of ours.
        .executableTarget(
            name: "Tools",
            dependencies: ["OneoWire", "OneoSandbox", "CSandbox", "CProcess", "CCurl", "CPostgresClient"],
            swiftSettings: swiftSettings,
            // The Swift runtime linked in: a jail holds /usr and this one file, nothing of the toolchain.
            linkerSettings: [.unsafeFlags([
                "-static-stdlib",
                // What static Foundation needs beside itself (SwiftPM's --static-swift-stdlib adds
                // these for a whole build; here it is this one product).
                "-Xlinker", "-lCoreFoundation", "-Xlinker", "-l_FoundationICU",
                "-Xlinker", "-l_FoundationCShims", "-Xlinker", "-l_FoundationCollections", "-Xlinker", "-lstdc++",
            ])]
        ),
        .executableTarget(
            name: "OneoSim",
            dependencies: [
                "ProviderSimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Drives a whole local stack as a client would: processes, HTTP, waiting on conditions.
        // The benchmark and the tests share it.
        .target(
            name: "StackControl",
            dependencies: [
                "OneoWire", "CProcess",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Benchmark",
            dependencies: [
                "Supervisor", "CProcess",
                "OneoWire", "OneoPrompt", "OneoStore", "OneoCore", "StackControl",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // Test support: a whole stack per test on the test command's PostgreSQL and Redis.
        .target(
            name: "OneoTesting",
            dependencies: [
                "OneoWire", "OneoStore", "StackControl",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OneoCoreTests",
            dependencies: [
                "OneoWire", "OneoPrompt", "OneoStore", "OneoCore", "Processor", "API", "ProviderSimulator", "StackControl",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [.copy("Golden")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QueueManagerTests",
            dependencies: [
                "QueueManager", "OneoWire", "OneoStore", "OneoTesting", "API",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SandboxTests",
            dependencies: ["OneoSandbox", "OneoWire", "OneoTesting", "CProcess", "CSandbox", "Supervisor", "OneoCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SupervisorTests",
            dependencies: ["Supervisor", "OneoWire", "CProcess"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "OneoTesting", "StackControl", "OneoWire", "OneoStore", "OneoCore", "OneoRedis", "API",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
