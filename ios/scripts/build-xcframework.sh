#!/usr/bin/env bash
# On a Mac (Xcode, rustup): build the phone library for iOS devices and simulators and pack it as
# ios/Frameworks/WeldGuardFFI.xcframework, the binary target `WeldGuardFFI` of ios/Package.swift;
# then generate the Swift bindings and copy them into the package. Not run on Linux (the project's
# tests there use the system-library form of WeldGuardFFI).
#
#   ios/scripts/build-xcframework.sh            release build (what an app ships)
#   PROFILE=debug ios/scripts/build-xcframework.sh
set -euo pipefail

if [ "$(uname -s)" != "Darwin" ]; then
    echo "build-xcframework.sh: needs macOS with Xcode (xcodebuild)" >&2
    exit 1
fi
package="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$package/.." && pwd)"
profile="${PROFILE:-release}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
flag=()
[ "$profile" = release ] && flag=(--release)

# Device (arm64) and simulators (Apple silicon and Intel).
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
    (cd "$root" && cargo build "${flag[@]}" -p weldguard-ffi --lib --target "$t")
done

# The bindings (library mode, from the host build) and the C module the XCFramework carries.
(cd "$root" && cargo xtask bindings --out "$target_dir/bindings")
"$package/scripts/copy-bindings.sh" "$target_dir/bindings"
work="$target_dir/xcframework"
rm -rf "$work"
mkdir -p "$work/headers"
cp "$target_dir/bindings/WeldGuardFFI.h" "$work/headers/"
cat >"$work/headers/module.modulemap" <<'MAP'
module WeldGuardFFI {
    header "WeldGuardFFI.h"
    export *
}
MAP

# One static library per platform: the device's, and the two simulator architectures joined.
mkdir -p "$work/ios-simulator"
lipo -create \
    "$target_dir/aarch64-apple-ios-sim/$profile/libweldguard_ffi.a" \
    "$target_dir/x86_64-apple-ios/$profile/libweldguard_ffi.a" \
    -output "$work/ios-simulator/libweldguard_ffi.a"

out="$package/Frameworks/WeldGuardFFI.xcframework"
rm -rf "$out"
mkdir -p "$package/Frameworks"
xcodebuild -create-xcframework \
    -library "$target_dir/aarch64-apple-ios/$profile/libweldguard_ffi.a" -headers "$work/headers" \
    -library "$work/ios-simulator/libweldguard_ffi.a" -headers "$work/headers" \
    -output "$out"
echo "build-xcframework.sh: $out"
