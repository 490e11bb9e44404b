// WeldGuardUI: the app's SwiftUI screens (one per view model, each a function of its state), the
// String Catalog (Resources/Localizable.xcstrings: zh-Hans, en), the Secure Enclave signer and the
// AVFoundation frame adapter. Everything Apple-only is under `#if canImport(…)`: on Linux this
// module builds with nothing but this file (the project's tests exercise the view models below
// it, in the WeldGuard module).
@_exported import WeldGuard

/// The module's version of the screens' design (shells.md), for an About screen.
public enum WeldGuardUIInfo {
    public static let design = "shells.md v1"
}
