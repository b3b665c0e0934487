// swift-tools-version: 6.1
//
// The benchmarks of swift-locals, a package of their own so that the library keeps zero
// dependencies (the way swift-log and swift-nio keep package-benchmark out of their root manifest).
//
//     swift package --package-path Benchmarks benchmark                  # package-benchmark suite
//     swift run -c release --package-path Benchmarks locals-compare       # performance table
//     Benchmarks/ci.sh                                                    # build only, for CI
import PackageDescription

let package = Package(
    name: "swift-locals-benchmarks",
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18), .watchOS(.v11), .visionOS(.v2)],
    dependencies: [
        // Named, so that the products below resolve whatever the folder of the clone is called.
        .package(name: "swift-locals", path: "..", traits: ["Tracing"]),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/ordo-one/malloc-interposer", from: "1.6.1"),
        .package(url: "https://github.com/apple/swift-service-context", from: "1.5.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
    ],
    targets: [
        // What every tool here measures: the Locals, the anchors and the peer, declared once.
        .target(
            name: "LocalsBenchmarkSupport",
            dependencies: [
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "ServiceContextModule", package: "swift-service-context"),
            ]
        ),
        // The package-benchmark suite (its folder's parent must be named Benchmarks for the plugin).
        .executableTarget(
            name: "LocalsBenchmarks",
            dependencies: [
                "LocalsBenchmarkSupport",
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ServiceContextModule", package: "swift-service-context"),
            ],
            path: "LocalsBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // One run, one table: the performance contract, every anchor measured beside its row.
        .executableTarget(
            name: "locals-compare",
            dependencies: [
                "LocalsBenchmarkSupport",
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "ServiceContextModule", package: "swift-service-context"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ]
        ),
        // A tiny loop of reads to run under `valgrind --tool=callgrind`.
        .executableTarget(
            name: "locals-profile",
            dependencies: [
                "LocalsBenchmarkSupport",
                .product(name: "Locals", package: "swift-locals"),
            ]
        ),
        // What W3C baggage costs per request: extract, inject, and binding the extracted fields.
        .executableTarget(
            name: "baggage-bench",
            dependencies: [
                .product(name: "Locals", package: "swift-locals"),
                .product(name: "LocalsTracing", package: "swift-locals"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "ServiceContextModule", package: "swift-service-context"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
