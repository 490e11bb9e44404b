#!/usr/bin/env bash
# Copy the generated Swift bindings into the package (they are never committed):
#
#   ios/scripts/copy-bindings.sh BINDINGS_DIR
#
# BINDINGS_DIR is what `cargo xtask bindings --out DIR` writes: WeldGuardCore.swift goes to the
# `WeldGuard` target, WeldGuardFFI.h beside the `WeldGuardFFI` module map. Files are replaced only
# when they changed, so SwiftPM does not rebuild for nothing.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 BINDINGS_DIR" >&2
    exit 2
fi
bindings="$1"
package="$(cd "$(dirname "$0")/.." && pwd)"
copy() {
    mkdir -p "$(dirname "$2")"
    if ! cmp -s "$1" "$2"; then
        cp "$1" "$2"
    fi
}
copy "$bindings/WeldGuardCore.swift" "$package/Sources/WeldGuard/Generated/WeldGuardCore.swift"
copy "$bindings/WeldGuardFFI.h" "$package/Sources/WeldGuardFFI/WeldGuardFFI.h"
