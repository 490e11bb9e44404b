// swift-tools-version:6.0
// WeldGuard for iOS: the phone library's Swift package.
//
// - `WeldGuardFFI`: the C interface of the Rust core (weldguard-ffi). On Apple platforms a binary
//   target, the XCFramework `scripts/build-xcframework.sh` builds; on Linux (the project's tests) a
//   system library: the generated header with a module map that links libweldguard_ffi.so, found
//   through `-Xlinker -L…` (scripts/swift.sh passes it). `WELDGUARD_FFI=system` picks the system
//   library on a Mac too (a host-built dylib).
// - `WeldGuard`: the generated Swift bindings (copied in by ios/scripts/copy-bindings.sh, never
//   committed), the idiomatic layer (WeldGuardSession, UiError, AsyncStreams) and the five view
//   models; no UIKit or SwiftUI.
// - `WeldGuardUI`: the SwiftUI screens, the String Catalog (zh-Hans, en), the Secure Enclave signer
//   and the AVFoundation frame adapter, each under `#if canImport(…)` so Linux builds it empty.
import Foundation
import PackageDescription

let useSystemLibrary: Bool = {
    #if os(Linux)
        return true
    #else
        return ProcessInfo.processInfo.environment["WELDGUARD_FFI"] == "system"
    #endif
}()

let ffiTarget: Target = useSystemLibrary
    ? .systemLibrary(name: "WeldGuardFFI", path: "Sources/WeldGuardFFI")
    : .binaryTarget(name: "WeldGuardFFI", path: "Frameworks/WeldGuardFFI.xcframework")

var targets: [Target] = [
    ffiTarget,
    .target(
        name: "WeldGuard",
        dependencies: ["WeldGuardFFI"],
        path: "Sources/WeldGuard"
    ),
    .target(
        name: "WeldGuardUI",
        dependencies: ["WeldGuard"],
        path: "Sources/WeldGuardUI",
        resources: [.process("Resources")]
    ),
]

// The tests' software P-256 signer: CryptoKit on Apple platforms, OpenSSL's libcrypto on Linux
// (CryptoKit is not there and swift-crypto cannot be fetched offline).
#if os(Linux)
    targets.append(.systemLibrary(name: "CLibCrypto", path: "Sources/CLibCrypto"))
    let testDependencies: [Target.Dependency] = ["WeldGuard", "CLibCrypto"]
#else
    let testDependencies: [Target.Dependency] = ["WeldGuard"]
#endif
targets.append(
    .testTarget(
        name: "WeldGuardTests",
        dependencies: testDependencies,
        path: "Tests/WeldGuardTests"
    ))

let package = Package(
    name: "WeldGuard",
    defaultLocalization: "zh-Hans",
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [
        .library(name: "WeldGuard", targets: ["WeldGuard"]),
        .library(name: "WeldGuardUI", targets: ["WeldGuardUI"]),
    ],
    targets: targets
)
