// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "swift-locals",
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18), .watchOS(.v11), .visionOS(.v2)],
    products: [
        .library(name: "Locals", targets: ["Locals"])
    ],
    targets: [
        .target(name: "Locals", dependencies: ["_LocalsRuntime"]),
        // The runtime entry points and debug variables the library asks, declared in C (not API).
        .target(name: "_LocalsRuntime"),
        .executableTarget(
            name: "locals-demo",
            dependencies: ["Locals"],
            path: "Examples/locals-demo"
        ),
        .testTarget(name: "LocalsTests", dependencies: ["Locals"]),
    ],
    swiftLanguageModes: [.v6]
)
