# Sourced by scripts/kotlin-tests.sh and scripts/kotlin-bench.sh: makes sure the Kotlin toolchain
# is here, idempotently and quietly, and sets
#   kotlinc_home      the kotlinc distribution (npm package `kotlin-compiler`)
#   kotlin_classpath  JNA, the Kotlin standard library, kotlin.test, coroutines and JUnit 5's API
#
# Installs what is missing: Debian's JRE, JNA and JUnit 5 with apt-get (as root; apt sources are
# never changed), and kotlinc cached in $WG_TOOLCHAINS/kotlinc-VERSION (default
# /var/tmp/weldguard-toolchains), fetched under a lock so two runs never fetch it at once.
# shellcheck shell=bash

kotlin_version=2.4.20
kotlin_tools="${WG_TOOLCHAINS:-/var/tmp/weldguard-toolchains}"
kotlinc_home="$kotlin_tools/kotlinc-$kotlin_version"
kotlin_java_dir=/usr/share/java

kotlin_say() { echo "kotlin-toolchain: $*" >&2; }

kotlin_toolchain() {
    local apt_log="$kotlin_tools/apt-kotlin.log"
    local missing=()
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
    [ -f "$kotlin_java_dir/jna.jar" ] || missing+=(libjna-java)
    compgen -G "/usr/lib/*/jni/libjnidispatch.system.so" >/dev/null || missing+=(libjna-jni)
    [ -f "$kotlin_java_dir/junit-platform-console-standalone.jar" ] || missing+=(junit5)
    mkdir -p "$kotlin_tools"
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            kotlin_say "missing ${missing[*]}: run 'apt-get install ${missing[*]}' as root"
            return 1
        fi
        kotlin_say "installing Debian packages: ${missing[*]} (log: $apt_log)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" </dev/null >"$apt_log" 2>&1; then
            kotlin_say "install failed; refreshing the package lists once and retrying"
            if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends "${missing[@]}"; } </dev/null >>"$apt_log" 2>&1; then
                cat "$apt_log" >&2
                kotlin_say "could not install ${missing[*]}"
                return 1
            fi
        fi
    fi

    (
        flock 9
        if [ ! -x "$kotlinc_home/bin/kotlinc" ]; then
            kotlin_say "fetching kotlinc $kotlin_version (npm package kotlin-compiler) into $kotlinc_home"
            partial="$(mktemp -d "$kotlin_tools/.kotlinc-partial.XXXXXX")"
            (cd "$partial" && npm pack --silent "kotlin-compiler@$kotlin_version" >/dev/null \
                && tar -xzf "kotlin-compiler-$kotlin_version.tgz") || exit 1
            chmod +x "$partial/package/bin/kotlinc"
            rm -rf "$kotlinc_home"
            mv "$partial/package" "$kotlinc_home"
            rm -rf "$partial"
        fi
    ) 9>"$kotlin_tools/.kotlinc.lock" || return 1

    local lib="$kotlinc_home/lib" j="$kotlin_java_dir"
    kotlin_classpath="$j/jna.jar:$lib/kotlin-stdlib.jar:$lib/kotlin-test.jar:$lib/kotlin-test-junit5.jar"
    kotlin_classpath="$kotlin_classpath:$lib/kotlinx-coroutines-core-jvm.jar"
    kotlin_classpath="$kotlin_classpath:$j/junit-jupiter-api.jar:$j/opentest4j.jar:$j/apiguardian-api.jar"
}
