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
