// swift-tools-version:6.0
import Foundation
import PackageDescription

let package = Package(
    name: "rch-xcode-store",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "rch-xcode", targets: ["RCHXcodeCommand"]),
        .executable(name: "rch-worker", targets: ["RCHWorkerCommand"]),
        .executable(name: "make-xcode-tree", targets: ["MakeXcodeTree"]),
        .executable(name: "rch-bench", targets: ["RCHBench"]),
        .library(name: "RCHBundle", targets: ["RCHBundle"]),
        .library(name: "RCHStore", targets: ["RCHStore"]),
        .library(name: "RCHJob", targets: ["RCHJob"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        .target(name: "CRCHSys"),
        .target(name: "CRCHSHA"),
        .target(
            name: "RCHCore",
            dependencies: [
                "CRCHSys", "CRCHSHA",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(name: "RCHBundle", dependencies: ["RCHCore", "CZstd"]),
        .target(name: "RCHIdentity", dependencies: ["RCHCore"]),
        .target(
            name: "RCHAttestation",
            dependencies: ["RCHCore", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "RCHStore", dependencies: ["RCHCore", "RCHBundle", "RCHAttestation"]),
        .target(name: "RCHJob", dependencies: ["RCHCore", .product(name: "TOMLKit", package: "TOMLKit")]),
        .target(
            name: "RCHProtocol", dependencies: ["RCHCore", .product(name: "SystemPackage", package: "swift-system")]),
        .target(
            name: "RCHWorker",
            dependencies: [
                "RCHCore", "RCHBundle", "RCHStore", "RCHJob", "RCHProtocol", "RCHIdentity", "RCHAttestation",
                "RCHXcodeReports", "RCHShared",
            ]),
        .target(
            name: "RCHHost",
            dependencies: ["RCHCore", "RCHBundle", "RCHStore", "RCHJob", "RCHProtocol", "RCHAttestation"]),
        .target(
            name: "RCHLoopback",
            dependencies: ["RCHCore", .product(name: "SystemPackage", package: "swift-system")]),
        .target(name: "RCHS3", dependencies: ["RCHCore", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "RCHShared",
            dependencies: [
                "RCHCore", "RCHBundle", "RCHStore", "RCHS3", "RCHAttestation",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(name: "RCHXcodeReports", dependencies: ["RCHCore"]),
        .target(
            name: "RCHFleet", dependencies: ["RCHCore", "RCHStore", "RCHJob", "RCHProtocol", "RCHHost"]),
        .target(
            name: "RCHRun",
            dependencies: [
                "RCHCore", "RCHBundle", "RCHStore", "RCHJob", "RCHProtocol", "RCHHost", "RCHAttestation", "RCHFleet",
            ]),
        .target(name: "XcodeTreeGen", dependencies: ["RCHCore"]),
        .target(
            name: "RCHCLISupport",
            dependencies: [
                "RCHCore", "RCHStore", "RCHJob", "RCHProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "RCHWorkerCommand",
            dependencies: [
                "RCHCore", "RCHBundle", "RCHStore", "RCHCLISupport", "RCHWorker", "RCHProtocol", "RCHIdentity",
                "RCHAttestation", "RCHShared", "RCHS3",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "RCHXcodeCommand",
            dependencies: [
                "RCHCore", "RCHBundle", "RCHStore", "RCHJob", "RCHCLISupport", "RCHHost", "RCHProtocol", "RCHRun",
                "RCHFleet", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "MakeXcodeTree",
            dependencies: ["XcodeTreeGen", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "RCHBench",
            dependencies: [
                "RCHCore", "RCHJob", "RCHStore", "RCHProtocol", "RCHWorker", "RCHHost", "RCHLoopback", "XcodeTreeGen",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(name: "RCHTestSupport", dependencies: ["RCHCore"], path: "Tests/RCHTestSupport"),
        .testTarget(name: "RCHCoreTests", dependencies: ["RCHCore", "CRCHSHA"]),
        .testTarget(name: "RCHS3Tests", dependencies: ["RCHCore", "RCHS3", "RCHTestSupport"]),
        .testTarget(name: "RCHXcodeReportsTests", dependencies: ["RCHCore", "RCHXcodeReports", "RCHTestSupport"]),
        .testTarget(
            name: "RCHTrustTests",
            dependencies: ["RCHCore", "RCHIdentity", "RCHAttestation", "RCHTestSupport"]),
        .testTarget(name: "RCHJobTests", dependencies: ["RCHCore", "RCHJob", "RCHTestSupport"]),
        .testTarget(
            name: "RCHBundleTests",
            dependencies: ["RCHCore", "RCHBundle", "RCHStore", "XcodeTreeGen", "RCHTestSupport"]),
        .testTarget(
            name: "RCHLaneTests",
            dependencies: [
                "RCHCore", "RCHBundle", "RCHStore", "RCHJob", "RCHProtocol", "RCHHost", "RCHWorker", "RCHLoopback",
                "XcodeTreeGen", "RCHTestSupport", "RCHAttestation", "RCHIdentity", "RCHRun", "RCHFleet", "RCHShared",
                "RCHS3",
            ]),
        .testTarget(
            name: "RCHStoreTests",
            dependencies: [
                "RCHCore", "RCHBundle", "RCHStore", "XcodeTreeGen", "RCHTestSupport", "RCHAttestation", "RCHShared",
                "RCHS3",
            ]),
    ]
)

// libFuzzer targets (Fuzz/Targets): only with RCH_FUZZ=1, built by scripts/fuzz with -sanitize=fuzzer.
// They have no main (libFuzzer's is linked), so they are never part of a plain `swift build`.
if ProcessInfo.processInfo.environment["RCH_FUZZ"] == "1" {
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/Targets/FuzzSupport"))
    let fuzzTargets: [(String, [Target.Dependency])] = [
        ("FuzzJSON", ["FuzzSupport", "RCHCore"]),
        (
            "FuzzFraming",
            ["FuzzSupport", "RCHCore", "RCHProtocol", .product(name: "SystemPackage", package: "swift-system")]
        ),
        ("FuzzTar", ["FuzzSupport", "RCHCore", "RCHBundle"]),
        ("FuzzIgnore", ["FuzzSupport", "RCHBundle"]),
        (
            "FuzzBlobPack",
            [
                "FuzzSupport", "RCHCore", "RCHBundle", "RCHStore",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
    ]
    for (name, deps) in fuzzTargets {
        package.targets.append(
            .executableTarget(
                name: name, dependencies: deps, path: "Fuzz/Targets/" + name,
                swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
        package.products.append(.executable(name: name, targets: [name]))
    }
}
