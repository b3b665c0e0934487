// swift-tools-version: 6.1
import PackageDescription

// An example with dependencies is its own package, so the root package keeps zero dependencies.
let package = Package(
    name: "VaporRequestID",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "VaporRequestID", targets: ["VaporRequestID"]),
        .executable(name: "vapor-request-id", targets: ["vapor-request-id"]),
    ],
    dependencies: [
        // The root package with its Vapor integration on (which turns on LocalsLogging too).
        .package(name: "swift-locals", path: "../..", traits: ["Vapor"]),
        .package(url: "https://github.com/vapor/vapor", from: "4.122.3"),
        // Already in Vapor's graph; named here because the load test drives the server with it.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .target(
            name: "VaporRequestID",
            dependencies: [
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "LocalsVapor", package: "swift-locals"),
                .product(name: "LocalsLogging", package: "swift-locals"),
                .product(name: "Vapor", package: "vapor"),
            ]
        ),
        .executableTarget(
            name: "vapor-request-id",
            dependencies: [
                "VaporRequestID",
                .product(name: "Vapor", package: "vapor"),
            ]
        ),
        .testTarget(
            name: "VaporRequestIDTests",
            dependencies: [
                "VaporRequestID",
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "VaporTesting", package: "vapor"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
