// swift-tools-version: 6.1
import PackageDescription

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The integrations are products of this package behind traits that are off by default, so that a
// package that enables none resolves, fetches and builds nothing but `Locals`:
//
//     .package(url: "https://github.com/OWNER/swift-locals", from: "0.2.0", traits: ["Hummingbird"]),
//
// Each integration's sources are wrapped in `#if Trait`, and each of its dependencies carries
// `condition: .when(traits:)`, so that with the trait off the module is empty and the dependency
// is pruned from the graph.
var traits: Set<Trait> = [
    .trait(name: "Logging", description: "LocalsLogging: a swift-log metadata provider for chosen Local fields."),
    .trait(
        name: "Tracing",
        description: "LocalsTracing: chosen Local fields as W3C baggage and span attributes (swift-distributed-tracing)."
    ),
    .trait(name: "NIO", description: "LocalsNIO: EventLoop and NIOThreadPool forms that carry every Local's value."),
    .trait(
        name: "Hummingbird",
        description: "LocalsHummingbird: a request-scope middleware for Hummingbird 2.",
        enabledTraits: ["Logging"]
    ),
    .trait(
        name: "Vapor",
        description: "LocalsVapor: a request-scope middleware for Vapor 4.",
        enabledTraits: ["Logging"]
    ),
    .trait(
        name: "GRPC",
        description: "LocalsGRPC: request-scope server and field-sending client interceptors for grpc-swift 2.",
        enabledTraits: ["Logging", "Tracing"]
    ),
    .trait(
        name: "OpenAPI",
        description: "LocalsOpenAPI: server request scopes, client fields as headers (swift-openapi-runtime).",
        enabledTraits: ["Logging"]
    ),
]

// `ENABLE_ALL_TRAITS=1 swift test` builds and tests every integration (CI does), as does
// `swift test --enable-all-traits`.
let enableAllTraits = ProcessInfo.processInfo.environment["ENABLE_ALL_TRAITS"] != nil
traits.insert(.default(enabledTraits: enableAllTraits ? Set(traits.map(\.name)) : []))

/// A product of one of the dependencies, linked only where `trait` is on (so that with the trait
/// off the dependency is pruned from the graph).
func product(_ name: String, of package: String, when trait: String) -> Target.Dependency {
    .product(name: name, package: package, condition: .when(traits: [trait]))
}

let package = Package(
    name: "swift-locals",
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18), .watchOS(.v11), .visionOS(.v2)],
    products: [
        .library(name: "Locals", targets: ["Locals"]),
        .library(name: "LocalsLogging", targets: ["LocalsLogging"]),
        .library(name: "LocalsTracing", targets: ["LocalsTracing"]),
        .library(name: "LocalsNIO", targets: ["LocalsNIO"]),
        .library(name: "LocalsHummingbird", targets: ["LocalsHummingbird"]),
        .library(name: "LocalsVapor", targets: ["LocalsVapor"]),
        .library(name: "LocalsGRPC", targets: ["LocalsGRPC"]),
        .library(name: "LocalsOpenAPI", targets: ["LocalsOpenAPI"]),
    ],
    traits: traits,
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // ServiceContext itself lives in swift-distributed-tracing; 1.5.1 is the first
        // swift-service-context that defers to it, so a graph that also holds an older user of
        // swift-service-context (AsyncHTTPClient asks for 1.1.0 or later) gets no duplicate module.
        .package(url: "https://github.com/apple/swift-service-context", from: "1.5.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/vapor", from: "4.122.3"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.4"),
    ],
    targets: [
        // MARK: The core: zero dependencies

        .target(name: "Locals", dependencies: ["_LocalsRuntime"]),
        // The runtime entry points and debug variables the library asks, declared in C (not API).
        .target(name: "_LocalsRuntime"),
        .executableTarget(
            name: "locals-demo",
            dependencies: ["Locals"],
            path: "Examples/locals-demo"
        ),
        .testTarget(name: "LocalsTests", dependencies: ["Locals"]),

        // MARK: Integrations, each behind its trait

        .target(
            name: "LocalsLogging",
            dependencies: [
                "Locals",
                product("Logging", of: "swift-log", when: "Logging"),
            ]
        ),
        .testTarget(
            name: "LocalsLoggingTests",
            dependencies: [
                "Locals",
                "LocalsLogging",
                product("Logging", of: "swift-log", when: "Logging"),
            ]
        ),

        .target(
            name: "LocalsTracing",
            dependencies: [
                "Locals",
                product("Tracing", of: "swift-distributed-tracing", when: "Tracing"),
                product("Instrumentation", of: "swift-distributed-tracing", when: "Tracing"),
                product("ServiceContextModule", of: "swift-service-context", when: "Tracing"),
            ]
        ),
        .testTarget(
            name: "LocalsTracingTests",
            dependencies: [
                "Locals",
                "LocalsTracing",
                product("Tracing", of: "swift-distributed-tracing", when: "Tracing"),
                product("Instrumentation", of: "swift-distributed-tracing", when: "Tracing"),
                product("InMemoryTracing", of: "swift-distributed-tracing", when: "Tracing"),
            ]
        ),

        .target(
            name: "LocalsNIO",
            dependencies: [
                "Locals",
                product("NIOCore", of: "swift-nio", when: "NIO"),
                product("NIOPosix", of: "swift-nio", when: "NIO"),
            ]
        ),
        .testTarget(
            name: "LocalsNIOTests",
            dependencies: [
                "Locals",
                "LocalsNIO",
                product("NIOCore", of: "swift-nio", when: "NIO"),
                product("NIOPosix", of: "swift-nio", when: "NIO"),
            ]
        ),

        // What the integrations' tests share: a log capture and the shape of a generated id (not a
        // product; its Logging half is built with the trait that turns Logging on).
        .target(
            name: "LocalsTestSupport",
            dependencies: [
                "Locals",
                "LocalsLogging",
                product("Logging", of: "swift-log", when: "Logging"),
            ],
            path: "Tests/LocalsTestSupport"
        ),

        // What the HTTP and gRPC integrations share: the request id's validation and
        // generation, opening one request scope over several Locals, and the notice line for a
        // dropped id (not API). Every trait that builds one of those integrations turns Logging on.
        .target(
            name: "_LocalsHTTPSupport",
            dependencies: [
                "Locals",
                product("Logging", of: "swift-log", when: "Logging"),
            ]
        ),
        .testTarget(name: "LocalsHTTPSupportTests", dependencies: ["_LocalsHTTPSupport"]),

        .target(
            name: "LocalsHummingbird",
            dependencies: [
                "Locals",
                "LocalsLogging",
                "_LocalsHTTPSupport",
                product("Hummingbird", of: "hummingbird", when: "Hummingbird"),
                product("HTTPTypes", of: "swift-http-types", when: "Hummingbird"),
                product("Logging", of: "swift-log", when: "Hummingbird"),
            ]
        ),
        .testTarget(
            name: "LocalsHummingbirdTests",
            dependencies: [
                "LocalsTestSupport",
                "Locals",
                "LocalsLogging",
                "LocalsHummingbird",
                product("Hummingbird", of: "hummingbird", when: "Hummingbird"),
                product("HummingbirdTesting", of: "hummingbird", when: "Hummingbird"),
                product("HTTPTypes", of: "swift-http-types", when: "Hummingbird"),
                product("Logging", of: "swift-log", when: "Hummingbird"),
                product("NIOCore", of: "swift-nio", when: "Hummingbird"),
            ]
        ),

        .target(
            name: "LocalsVapor",
            dependencies: [
                "Locals",
                "LocalsLogging",
                "_LocalsHTTPSupport",
                product("Vapor", of: "vapor", when: "Vapor"),
                product("Logging", of: "swift-log", when: "Vapor"),
            ]
        ),
        .testTarget(
            name: "LocalsVaporTests",
            dependencies: [
                "LocalsTestSupport",
                "Locals",
                "LocalsLogging",
                "LocalsVapor",
                product("Vapor", of: "vapor", when: "Vapor"),
                product("VaporTesting", of: "vapor", when: "Vapor"),
                product("Logging", of: "swift-log", when: "Vapor"),
            ]
        ),

        .target(
            name: "LocalsGRPC",
            dependencies: [
                "Locals",
                "LocalsTracing",
                "_LocalsHTTPSupport",
                product("GRPCCore", of: "grpc-swift-2", when: "GRPC"),
                product("Logging", of: "swift-log", when: "GRPC"),
                product("Instrumentation", of: "swift-distributed-tracing", when: "GRPC"),
                product("ServiceContextModule", of: "swift-service-context", when: "GRPC"),
            ]
        ),
        .testTarget(
            name: "LocalsGRPCTests",
            dependencies: [
                "LocalsTestSupport",
                "Locals",
                "LocalsLogging",
                "LocalsTracing",
                "LocalsGRPC",
                product("GRPCCore", of: "grpc-swift-2", when: "GRPC"),
                // Client and server in one process, no socket.
                product("GRPCInProcessTransport", of: "grpc-swift-2", when: "GRPC"),
                product("Logging", of: "swift-log", when: "GRPC"),
                product("Instrumentation", of: "swift-distributed-tracing", when: "GRPC"),
            ]
        ),

        .target(
            name: "LocalsOpenAPI",
            dependencies: [
                "Locals",
                "_LocalsHTTPSupport",
                product("OpenAPIRuntime", of: "swift-openapi-runtime", when: "OpenAPI"),
                product("HTTPTypes", of: "swift-http-types", when: "OpenAPI"),
                product("Logging", of: "swift-log", when: "OpenAPI"),
            ]
        ),
        .testTarget(
            name: "LocalsOpenAPITests",
            dependencies: [
                "LocalsTestSupport",
                "Locals",
                "LocalsLogging",
                "LocalsOpenAPI",
                product("OpenAPIRuntime", of: "swift-openapi-runtime", when: "OpenAPI"),
                product("HTTPTypes", of: "swift-http-types", when: "OpenAPI"),
                product("Logging", of: "swift-log", when: "OpenAPI"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Upcoming language features, on for every Swift target (as swift-log does).
for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    guard target.name != "_LocalsRuntime" else { continue }  // C
    var settings = target.swiftSettings ?? []
    // Require `any` for existential types.
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    // A module sees the members of only the modules it imports itself.
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    // Imports are internal unless marked otherwise: the public API exposes no dependency by accident.
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
