#!/usr/bin/env bash
# The Kotlin half of `cargo xtask bench ffi`: compiles the generated bindings with
# android/weldguard-kotlin/src/bench/kotlin and runs the bench on the JVM against the optimised
# phone library, with the inputs the Rust half wrote into FIXTURES_DIR.
#
#   scripts/kotlin-bench.sh BINDINGS_DIR LIBRARY_DIR FIXTURES_DIR
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 BINDINGS_DIR LIBRARY_DIR FIXTURES_DIR" >&2
    exit 2
fi
bindings="$(cd "$1" && pwd)"
library_dir="$(cd "$2" && pwd)"
fixtures="$(cd "$3" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/kotlin-toolchain.sh
. "$root/scripts/kotlin-toolchain.sh"
kotlin_toolchain

work="$root/target/kotlin-bench"
rm -rf "$work"
mkdir -p "$work/classes"
mapfile -t sources < <(find "$root/android/weldguard-kotlin/src/bench/kotlin" -name '*.kt' | sort)
echo "kotlin-bench.sh: compiling the generated bindings and ${#sources[@]} bench file(s)" >&2
JAVA_OPTS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" "$kotlinc_home/bin/kotlinc" \
    -nowarn -jvm-target 17 -cp "$kotlin_classpath" -d "$work/classes" \
    "$bindings/org/weldguard/core/weldguard_core.kt" "${sources[@]}" >&2
# The bench runs with the JVM's full JIT (as an app's runtime compiles hot code) and one GC thread:
# a busy 2-core machine has no core to spare for more.
exec java -XX:+UseSerialGC -Djna.library.path="$library_dir" -cp "$work/classes:$kotlin_classpath" \
    org.weldguard.bench.FfiBenchKt "$fixtures"
