#!/usr/bin/env bash
# Kotlin tests on the JVM (android/weldguard-kotlin/src/test): the generated bindings, the Android
# shell's idiomatic layer and view models (android/weldguard-kotlin/src/main), against the built
# core library through JNA, the way the Android shell loads it, and the platform's real server.
#
#   scripts/kotlin-tests.sh BINDINGS_DIR LIBRARY_DIR [BIN_DIR]
#
# BIN_DIR holds weldguard-server, weldguard and wg-shell-world (the flow tests start the server on
# loopback and set the platform up with wg-shell-world); default: $CARGO_TARGET_DIR/debug, or
# target/debug. The tests get the paths as -Dweldguard.fixtures and -Dweldguard.bin.
#
# Installs what is missing, idempotently and quietly (scripts/kotlin-toolchain.sh): Debian's JRE, JNA
# and JUnit 5 with apt-get (as root; apt sources are never changed), and kotlinc from the npm package
# `kotlin-compiler`, cached in $WG_TOOLCHAINS/kotlinc-VERSION (default
# /var/tmp/weldguard-toolchains). Then compiles the
# generated Kotlin with the tests and runs them with JUnit's console launcher. The last line on
# stdout is `kotlin tests: P passed, F failed`; the exit status is non-zero when a test failed or
# none ran.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 BINDINGS_DIR LIBRARY_DIR [BIN_DIR]" >&2
    exit 2
fi
bindings="$(cd "$1" && pwd)"
library_dir="$(cd "$2" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin_dir="${3:-${CARGO_TARGET_DIR:-$root/target}/debug}"
bin_dir="$(cd "$bin_dir" && pwd)"
module="$root/android/weldguard-kotlin"
# shellcheck source=scripts/kotlin-toolchain.sh
. "$root/scripts/kotlin-toolchain.sh"
kotlin_toolchain
classpath="$kotlin_classpath"
java_dir="$kotlin_java_dir"
say() { echo "kotlin-tests.sh: $*" >&2; }

# --- compile ----------------------------------------------------------------------------------
work="$root/target/kotlin-tests"
rm -rf "$work"
mkdir -p "$work/classes"
mapfile -t sources < <(find "$module/src/main/kotlin" -name '*.kt' | sort)
mapfile -t tests < <(find "$module/src/test/kotlin" -name '*.kt' | sort)
say "compiling the generated bindings, ${#sources[@]} source file(s) and ${#tests[@]} test file(s)"
JAVA_OPTS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" "$kotlinc_home/bin/kotlinc" \
    -nowarn -jvm-target 17 -cp "$classpath" -d "$work/classes" \
    "$bindings/org/weldguard/core/weldguard_core.kt" "${sources[@]}" "${tests[@]}" >&2

# --- run --------------------------------------------------------------------------------------
report="$work/junit.txt"
set +e
mkdir -p "$work/tmp"
java -Djava.io.tmpdir="$work/tmp" -Djna.library.path="$library_dir" -Dweldguard.fixtures="$module/src/test/resources/fixtures" \
    -Dweldguard.bin="$bin_dir" \
    -jar "$java_dir/junit-platform-console-standalone.jar" \
    --disable-banner --disable-ansi-colors --fail-if-no-tests --details=tree \
    -cp "$work/classes:$classpath" --scan-classpath "$work/classes" >"$report" 2>&1
status=$?
set -e
cat "$report" >&2
count() { grep -E "\[ +[0-9]+ tests $1" "$report" | grep -oE '[0-9]+' | head -1; }
passed="$(count successful)"
failed="$(count failed)"
echo "kotlin tests: ${passed:-0} passed, ${failed:-0} failed"
if [ "$status" -ne 0 ] || [ "${failed:-0}" != 0 ] || [ "${passed:-0}" = 0 ]; then
    say "the Kotlin tests failed (JUnit exit status $status)"
    exit 1
fi
