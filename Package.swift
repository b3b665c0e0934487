// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "swift-locals",
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18), .watchOS(.v11), .visionOS(.v2)],
    products: [
        .library(name: "Locals", targets: ["Locals"])
    ],
    targets: [
        .target(name: "Locals"),
        .executableTarget(
            name: "locals-demo",
            dependencies: ["Locals"],
            path: "Examples/locals-demo"
        ),
        .testTarget(name: "LocalsTests", dependencies: ["Locals"]),
    ],
    swiftLanguageModes: [.v6]
)
