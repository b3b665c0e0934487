// swift-tools-version: 6.1
import PackageDescription

// An example with dependencies is its own package, so the root package and the integration keep
// their short dependency lists. The Hummingbird middleware lives here, not in LocalsTracing: it is
// a few lines over LocalsBaggage's framework-neutral API, and keeping it here keeps the integration
// free of any HTTP server or client.
let package = Package(
    name: "BaggageService",
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18), .watchOS(.v11), .visionOS(.v2)],
    products: [
        .library(name: "BaggageService", targets: ["BaggageService"]),
        .executable(name: "baggage-service", targets: ["baggage-service"]),
    ],
    dependencies: [
        .package(name: "swift-locals", path: "../..", traits: ["Tracing", "Logging"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        // Already in the graph through the packages above; named because this package imports them.
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // For the test that exports the services' spans over OTLP/HTTP. Only the HTTP exporter:
        // the default traits would also build the gRPC exporter and its dependencies.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        .target(
            name: "BaggageService",
            dependencies: [
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "LocalsTracing", package: "swift-locals"),
                .product(name: "LocalsLogging", package: "swift-locals"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "baggage-service",
            dependencies: [
                "BaggageService",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BaggageServiceTests",
            dependencies: [
                "BaggageService",
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "LocalsTracing", package: "swift-locals"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OTel", package: "swift-otel"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
