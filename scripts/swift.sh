#!/usr/bin/env bash
# Swift for the iOS package (ios/) on any machine: where `swift` is on PATH (a Mac, a Swift image)
# it is used directly; elsewhere (Linux hosts whose glibc is too old for Debian's `swiftlang`) the
# script builds a Debian trixie chroot with `swiftlang` once and runs swift inside it.
#
#   scripts/swift.sh toolchain                         make the toolchain ready (idempotent)
#   scripts/swift.sh run ARGS…                         `swift ARGS…` in ios/ (folders outside the
#                                                      repository it needs: WG_SWIFT_BINDS=DIR:DIR…)
#   scripts/swift.sh test BINDINGS_DIR LIBRARY_DIR BIN_DIR
#       copy the generated Swift bindings (BINDINGS_DIR: WeldGuardCore.swift, WeldGuardFFI.h)
#       into the package, then `swift build` and `swift test` against the core library in
#       LIBRARY_DIR (libweldguard_ffi.so) with the server and the bureau's desk tool from BIN_DIR
#       (weldguard-server, wg-shell-world). The last line on stdout is
#       `swift tests: P passed, F failed`; the exit status is non-zero when a test failed or none ran.
#
# The chroot: `debootstrap --variant=minbase trixie` from the mirror the host's apt sources name
# (the host's sources are only read, never changed), then `apt-get install` of swiftlang,
# libc6-dev, libssl-dev and ca-certificates in it (see chroot_packages). Built under a lock in a
# `.partial` folder renamed when complete, cached in $WG_TOOLCHAINS/swift-trixie (default
# /var/tmp/weldguard-toolchains), a `.weldguard-ready` marker inside. Commands run in a private
# mount namespace (`unshare --mount --propagation private`) with /proc, /dev, the repository, the
# given folders and /tmp bind-mounted at the same paths, and a clean environment (`env -i`), in a
# PID namespace of its own: no mount and no process outlives the command. Progress is logged to
# files under $WG_TOOLCHAINS and shown on failure.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
package="$root/ios"
tools="${WG_TOOLCHAINS:-/var/tmp/weldguard-toolchains}"
chroot_dir="$tools/swift-trixie"
marker=".weldguard-ready"
build_log="$tools/swift-trixie-build.log"
chroot_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "swift.sh: $*" >&2; }
usage() {
    sed -n '5,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# --- the toolchain ----------------------------------------------------------------------------
host_swift() { [ -z "${WG_SWIFT_CHROOT:-}" ] && command -v swift >/dev/null 2>&1; }

chroot_ready() {
    [ -f "$chroot_dir/$marker" ] && [ -x "$chroot_dir/usr/libexec/swift/bin/swift-frontend" ]
}

# Debian packages the chroot holds: the compiler, the C library headers Foundation's C modules need,
# OpenSSL's libcrypto headers (the tests' software P-256 signer on Linux, where CryptoKit is
# missing) and the CA certificates (the core's HTTP client will not build without a root store,
# even for plain http on loopback); each with a file that shows it is installed.
chroot_packages=(swiftlang libc6-dev libssl-dev ca-certificates)
chroot_package_files=(usr/libexec/swift/bin/swift-frontend usr/include/stdio.h
    usr/include/openssl/evp.h etc/ssl/certs/ca-certificates.crt)

# The packages missing from the chroot at $1 (a chroot made by an older version of this script).
missing_packages() {
    local i
    for i in "${!chroot_packages[@]}"; do
        [ -e "$1/${chroot_package_files[$i]}" ] || echo "${chroot_packages[$i]}"
    done
}

# The Debian mirror the host's apt sources name (deb822 `URIs:` or one-line `deb URL …`), not the
# security archive; Debian's own redirector when none is found.
host_mirror() {
    local files=() uri
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    if [ ${#files[@]} -gt 0 ]; then
        uri="$(grep -hE '^[[:space:]]*(URIs:|deb[[:space:]])' "${files[@]}" \
            | sed -E 's/^[[:space:]]*URIs:[[:space:]]*//; s/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' \
            | tr ' ' '\n' | grep -E '^https?://[^ ]*/debian/?$' | head -1 || true)"
        if [ -n "$uri" ]; then
            echo "${uri%/}"
            return
        fi
    fi
    echo "http://deb.debian.org/debian"
}

# Run a logged step of the chroot build; on failure show the log and stop.
step() {
    local what="$1"
    shift
    echo "== $what: $*" >>"$build_log"
    if ! "$@" </dev/null >>"$build_log" 2>&1; then
        cat "$build_log" >&2
        say "$what failed (log: $build_log)"
        exit 1
    fi
}

build_chroot() {
    local started partial mirror
    started=$(date +%s)
    if ! command -v debootstrap >/dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ]; then
            say "debootstrap is missing: run 'apt-get install debootstrap' as root"
            exit 1
        fi
        say "installing debootstrap with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -qq --no-install-recommends debootstrap >>"$build_log" 2>&1; then
            step "apt-get update" apt-get update -qq
            step "install debootstrap" apt-get install -y -qq --no-install-recommends debootstrap
        fi
    fi
    partial="$chroot_dir.partial"
    rm -rf "$partial"
    mirror="$(host_mirror)"
    say "building the Swift toolchain chroot (Debian trixie from $mirror) in $chroot_dir; a few minutes, once"
    step "debootstrap" debootstrap --variant=minbase \
        --keyring=/usr/share/keyrings/debian-archive-keyring.gpg trixie "$partial" "$mirror"
    cp /etc/resolv.conf "$partial/etc/resolv.conf"
    step "apt-get update (chroot)" in_chroot "$partial" apt-get update -qq
    step "install swiftlang (chroot)" in_chroot "$partial" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${chroot_packages[@]}"
    step "apt-get clean (chroot)" in_chroot "$partial" apt-get clean
    if [ ! -x "$partial/usr/libexec/swift/bin/swift-frontend" ]; then
        cat "$build_log" >&2
        say "swiftlang did not install swift-frontend"
        exit 1
    fi
    date -u +%FT%TZ >"$partial/$marker"
    mv "$partial" "$chroot_dir"
    say "Swift toolchain chroot ready in $(($(date +%s) - started)) s"
}

# Install what an older chroot lacks (under the lock).
complete_chroot() {
    local missing
    mapfile -t missing < <(missing_packages "$chroot_dir")
    [ ${#missing[@]} -eq 0 ] && return 0
    say "adding ${missing[*]} to the Swift toolchain chroot"
    step "apt-get update (chroot)" in_chroot "$chroot_dir" apt-get update -qq
    step "install ${missing[*]} (chroot)" in_chroot "$chroot_dir" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
    step "apt-get clean (chroot)" in_chroot "$chroot_dir" apt-get clean
}

toolchain() {
    host_swift && return 0
    if chroot_ready && [ -z "$(missing_packages "$chroot_dir")" ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        say "no swift on PATH and the chroot needs root to build and enter"
        exit 1
    fi
    mkdir -p "$tools"
    exec 8>"$tools/.swift-trixie.lock"
    flock 8
    if ! chroot_ready; then
        rm -rf "$chroot_dir"
        : >"$build_log"
        build_chroot
    fi
    complete_chroot
    flock -u 8
}

# in_chroot ROOT CMD…: CMD in ROOT, in a private mount namespace, with /proc, /dev, the repository,
# /tmp and every folder in $binds mounted at the same paths, and a clean environment plus the
# variables named in $pass_env.
binds=()
pass_env=()
in_chroot() {
    local target="$1"
    shift
    local mounts="mount -t proc proc '$target/proc' && mount --rbind /dev '$target/dev'"
    mounts="$mounts && mount --make-rslave '$target/dev'"
    local d
    for d in "$root" /tmp "${binds[@]}"; do
        [ -d "$d" ] || continue
        mkdir -p "$target$d"
        mounts="$mounts && mount --bind '$d' '$target$d'"
    done
    cp /etc/resolv.conf "$target/etc/resolv.conf" 2>/dev/null || true
    local envs=(PATH="$chroot_path" HOME=/root LANG=C.UTF-8 TERM=dumb)
    local v
    for v in "${pass_env[@]}"; do
        envs+=("$v=${!v:-}")
    done
    # shellcheck disable=SC2016
    # A private mount namespace (no mount outlives the command) and a private PID namespace: when
    # the command ends, every process it left (a test's server) ends with it.
    unshare --mount --propagation private --pid --fork --kill-child -- sh -c "$mounts"' && exec chroot "$@"' \
        sh "$target" env -i "${envs[@]}" "$@"
}

# swift_in DIR ARGS…: `swift ARGS…` with DIR as the working folder.
swift_in() {
    local dir="$1"
    shift
    if host_swift; then
        (cd "$dir" && swift "$@")
    else
        in_chroot "$chroot_dir" sh -c 'cd "$0" && exec swift "$@"' "$dir" "$@"
    fi
}

# --- test mode --------------------------------------------------------------------------------
run_tests() {
    local bindings library_dir bin_dir
    bindings="$(cd "$1" && pwd)"
    library_dir="$(cd "$2" && pwd)"
    bin_dir="$(cd "$3" && pwd)"
    for f in "$bindings/WeldGuardCore.swift" "$bindings/WeldGuardFFI.h" \
        "$library_dir/libweldguard_ffi.so" "$bin_dir/weldguard-server" "$bin_dir/wg-shell-world"; do
        if [ ! -f "$f" ]; then
            say "missing $f"
            exit 1
        fi
    done
    toolchain
    "$root/ios/scripts/copy-bindings.sh" "$bindings"

    binds=("$bindings" "$library_dir" "$bin_dir")
    export WG_BIN_DIR="$bin_dir" WG_LIBRARY_DIR="$library_dir"
    pass_env=(WG_BIN_DIR WG_LIBRARY_DIR)
    local link=(-Xlinker -L"$library_dir" -Xlinker -rpath -Xlinker "$library_dir")
    local log="$package/.build/swift-build.log"
    mkdir -p "$package/.build"
    say "swift build (log: $log)"
    if ! swift_in "$package" build --build-tests "${link[@]}" >"$log" 2>&1; then
        cat "$log" >&2
        say "swift build failed"
        echo "swift tests: 0 passed, 0 failed"
        exit 1
    fi
    local report="$package/.build/swift-test.log"
    say "swift test (log: $report)"
    set +e
    swift_in "$package" test --skip-build "${link[@]}" >"$report" 2>&1
    local status=$?
    set -e
    # Swift Testing prints one line per test: `✔ Test name() passed after …` or `✘ Test … failed`.
    local passed failed
    passed="$(grep -E '^[^ ]+ Test .* passed after' "$report" | grep -vc ' Test run with ' || true)"
    failed="$(grep -E '^[^ ]+ Test .* failed after' "$report" | grep -vc ' Test run with ' || true)"
    if [ "$status" -ne 0 ] || [ "$failed" != 0 ]; then
        cat "$report" >&2
    else
        grep -E 'Test (run|.* passed after)' "$report" >&2 || true
    fi
    echo "swift tests: $passed passed, $failed failed"
    if [ "$status" -ne 0 ] || [ "$failed" != 0 ] || [ "$passed" = 0 ]; then
        say "the Swift tests failed (swift test exit status $status)"
        exit 1
    fi
}

case "${1:-}" in
    toolchain)
        toolchain
        ;;
    run)
        shift
        toolchain
        IFS=: read -r -a binds <<<"${WG_SWIFT_BINDS:-}"
        swift_in "$package" "$@"
        ;;
    test)
        [ $# -eq 4 ] || usage
        run_tests "$2" "$3" "$4"
        ;;
    *)
        usage
        ;;
esac
