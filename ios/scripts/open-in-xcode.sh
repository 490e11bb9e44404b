#!/usr/bin/env bash
# On a Mac: build the XCFramework when missing, then open the Swift package in Xcode (File > Add
# Package Dependencies… > Add Local… takes the same folder for an app project).
set -euo pipefail
package="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$package/Frameworks/WeldGuardFFI.xcframework" ]; then
    "$package/scripts/build-xcframework.sh"
fi
open -a Xcode "$package/Package.swift"
