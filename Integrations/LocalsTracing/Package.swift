// swift-tools-version: 6.1
import PackageDescription

// Its own package, so that the root package keeps zero dependencies. It depends on the two packages
// that define the propagation API and nothing else: no HTTP server or client.
let package = Package(
    name: "LocalsTracing",
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18), .watchOS(.v11), .visionOS(.v2)],
    products: [
        .library(name: "LocalsTracing", targets: ["LocalsTracing"]),
        .executable(name: "baggage-bench", targets: ["baggage-bench"]),
    ],
    dependencies: [
        .package(name: "swift-locals", path: "../.."),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // ServiceContext itself now lives in swift-distributed-tracing; 1.5.1 is the first
        // swift-service-context that defers to it, so a graph that also holds an older user of
        // swift-service-context (AsyncHTTPClient asks for 1.1.0 or later) gets no duplicate module.
        .package(url: "https://github.com/apple/swift-service-context", from: "1.5.1"),
    ],
    targets: [
        .target(
            name: "LocalsTracing",
            dependencies: [
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "ServiceContextModule", package: "swift-service-context"),
            ]
        ),
        .executableTarget(
            name: "baggage-bench",
            dependencies: [
                "LocalsTracing",
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ]
        ),
        .testTarget(
            name: "LocalsTracingTests",
            dependencies: [
                "LocalsTracing",
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
