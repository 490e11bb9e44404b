#!/usr/bin/env bash
# The web dashboard's browser tests (server/dashboard/tests/, docs/adr/0019-web-dashboard.md):
# installs, once and quietly, Debian's `chromium` and a Chinese font (`fonts-wqy-microhei`) (apt-get, as postgres.sh does for PostgreSQL; never
# changes apt sources) and `playwright-core` (pinned) from npm into a fixed folder under
# /var/tmp/weldguard-toolchains, then runs the Node tests (`node --test`), which start the debug
# `weldguard-server` and build their world with `wg-dash-world` (both must be built: `cargo xtask
# test` builds them first; `cargo build -p weldguard-server -p weldguard-tests` by hand).
#
#   scripts/browser.sh              install when missing, run the tests
#   scripts/browser.sh install      install only
#
# The last line on stdout is `browser tests: N passed, M failed`; the exit status is non-zero when
# a test failed or the tools could not be installed. Environment: WG_TOOLCHAINS (default
# /var/tmp/weldguard-toolchains), WG_TARGET_DIR (default ./target), WG_BROWSER_SHOTS (folder for the
# screenshots, default docs/dashboard).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
toolchains="${WG_TOOLCHAINS:-/var/tmp/weldguard-toolchains}"
playwright_version="1.56.1"
prefix="$toolchains/playwright-core-$playwright_version"
log="$toolchains/browser-install.log"

say() { echo "browser.sh: $*" >&2; }

# Chromium, and a Chinese font (the screenshots show Chinese text; Debian's chromium brings none).
install_chromium() {
    if [ -x /usr/bin/chromium ] && [ -n "$(fc-list :lang=zh 2>/dev/null | head -1)" ]; then
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        say "chromium is not installed and this is not root: run 'apt-get install chromium fonts-wqy-microhei' as root"
        exit 1
    fi
    say "installing Debian's chromium package (log: $log)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends chromium fonts-wqy-microhei </dev/null >>"$log" 2>&1; then
        say "install failed; refreshing the package lists once and retrying"
        apt-get update -q </dev/null >>"$log" 2>&1
        apt-get install -y -q --no-install-recommends chromium fonts-wqy-microhei </dev/null >>"$log" 2>&1
    fi
}

install_playwright() {
    if [ -f "$prefix/node_modules/playwright-core/package.json" ]; then
        return
    fi
    say "installing playwright-core $playwright_version into $prefix (log: $log)"
    mkdir -p "$prefix"
    # No browser download: the tests drive Debian's chromium.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$prefix" --no-audit --no-fund \
        --silent "playwright-core@$playwright_version" >>"$log" 2>&1
}

mkdir -p "$toolchains"
install_chromium
install_playwright
if [ "${1:-}" = install ]; then
    exit 0
fi

target="${WG_TARGET_DIR:-$root/target}"
for bin in weldguard-server wg-dash-world; do
    if [ ! -x "$target/debug/$bin" ]; then
        say "$target/debug/$bin is missing: cargo build -p weldguard-server -p weldguard-tests"
        echo "browser tests: 0 passed, 1 failed"
        exit 1
    fi
done

export WG_PLAYWRIGHT="$prefix/node_modules/playwright-core"
export WG_SERVER_BIN="$target/debug/weldguard-server"
export WG_WORLD_BIN="$target/debug/wg-dash-world"
export WG_BROWSER_SHOTS="${WG_BROWSER_SHOTS:-$root/docs/dashboard}"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
status=0
# One test file at a time: each starts its own server and browser (2 cores shared).
node --test --test-concurrency=1 --test-reporter=tap --test-reporter-destination="$report" \
    "$root"/server/dashboard/tests/*.test.mjs >&2 || status=$?
passed="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$report" | tail -1)"
failed="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$report" | tail -1)"
passed="${passed:-0}"
failed="${failed:-0}"
# Show failures in full.
if [ "$failed" != 0 ]; then
    cat "$report" >&2
fi
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
    failed=1
fi
echo "browser tests: $passed passed, $failed failed"
exit "$status"
