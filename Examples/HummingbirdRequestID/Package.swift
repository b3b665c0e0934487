// swift-tools-version: 6.1
import PackageDescription

// An example with dependencies is its own package, so the root package keeps zero dependencies.
let package = Package(
    name: "HummingbirdRequestID",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "HummingbirdRequestID", targets: ["HummingbirdRequestID"]),
        .executable(name: "request-id-server", targets: ["request-id-server"]),
    ],
    dependencies: [
        // The root package with its Hummingbird integration on (which turns on LocalsLogging too).
        .package(name: "swift-locals", path: "../..", traits: ["Hummingbird"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Already in Hummingbird's graph; named here because this package imports them directly.
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .target(
            name: "HummingbirdRequestID",
            dependencies: [
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "LocalsHummingbird", package: "swift-locals"),
                .product(name: "LocalsLogging", package: "swift-locals"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "request-id-server",
            dependencies: [
                "HummingbirdRequestID",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "HummingbirdRequestIDTests",
            dependencies: [
                "HummingbirdRequestID",
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "LocalsHummingbird", package: "swift-locals"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
