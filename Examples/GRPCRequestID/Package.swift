// swift-tools-version: 6.1
import PackageDescription

// An example with dependencies is its own package, so the root package keeps zero dependencies.
let package = Package(
    name: "GRPCRequestID",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "GRPCRequestID", targets: ["GRPCRequestID"]),
        .executable(name: "grpc-request-id", targets: ["grpc-request-id"]),
    ],
    dependencies: [
        // The root package with its gRPC integration on (which turns on LocalsLogging too).
        .package(name: "swift-locals", path: "../..", traits: ["GRPC"]),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "GRPCRequestID",
            dependencies: [
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "LocalsGRPC", package: "swift-locals"),
                .product(name: "LocalsLogging", package: "swift-locals"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "grpc-request-id",
            dependencies: [
                "GRPCRequestID",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "GRPCRequestIDTests",
            dependencies: [
                "GRPCRequestID",
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "LocalsGRPC", package: "swift-locals"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
