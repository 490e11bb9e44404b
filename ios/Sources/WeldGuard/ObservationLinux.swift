// Linux only: Swift 6.0's Observation library refers to `swift::threading::fatal`, which the
// Linux runtime does not export (swiftlang/swift#75670, fixed in 6.2); without this definition a
// target using @Observable fails to link. Never compiled on Apple platforms.
#if os(Linux) && canImport(Observation)
    @_cdecl("_ZN5swift9threading5fatalEPKcz")
    func _swiftThreadingFatal() -> Never {
        fatalError("swift::threading::fatal")
    }
#endif
