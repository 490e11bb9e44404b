#!/usr/bin/env bash
# A PostgreSQL cluster for WeldGuard's tests and benchmarks: installs Debian's server package when
# missing, creates a cluster in a fixed folder (trust auth, loopback only), starts it when it is not
# running, and prints its connection URL on stdout (everything else goes to stderr or the log).
#
#   scripts/postgres.sh          ensure running, print postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/postgres.sh stop     stop the cluster
#
# Environment: WG_PG_DIR (default /var/tmp/weldguard-postgres), WG_PG_PORT (first port to try,
# default 55432), WG_PG_FORCE_INSTALL=1 (run the apt-get install branch even when the server binary
# is present; apt-get then only confirms it). Runs as root in CI (initdb and postgres then run as the
# `postgres` OS user through runuser) or as an ordinary user. Never changes apt sources.
set -euo pipefail

dir="${WG_PG_DIR:-/var/tmp/weldguard-postgres}"
first_port="${WG_PG_PORT:-55432}"
log="$dir/server.log"

say() { echo "postgres.sh: $*" >&2; }

find_bin() {
    local found=""
    for candidate in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$candidate" ] && found="$(dirname "$candidate")"
    done
    # The glob is sorted, so the last one is the newest major version.
    printf '%s' "$found"
}

install_server() {
    if [ "$(id -u)" -ne 0 ]; then
        say "the PostgreSQL server is not installed and this is not root: run 'apt-get install postgresql' as root"
        exit 1
    fi
    say "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q postgresql </dev/null >&2; then
        say "install failed; refreshing the package lists once and retrying"
        apt-get update -q </dev/null >&2
        apt-get install -y -q postgresql </dev/null >&2
    fi
}

# Run a command as the cluster's owner: the postgres OS user when we are root.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

bin="$(find_bin)"
if [ -z "$bin" ] || [ "${WG_PG_FORCE_INSTALL:-0}" = 1 ]; then
    install_server
    bin="$(find_bin)"
    if [ -z "$bin" ]; then
        say "no /usr/lib/postgresql/*/bin/postgres after installing"
        exit 1
    fi
fi

if [ "${1:-}" = stop ]; then
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2
    fi
    exit 0
fi

if [ ! -f "$dir/data/PG_VERSION" ]; then
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir"
    fi
    chmod 700 "$dir"
    port="$first_port"
    while port_in_use "$port"; do
        port=$((port + 1))
    done
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner mkdir -p "$dir/sock"
    as_owner sh -c "cat >> '$dir/data/postgresql.conf'" <<CONF
# weldguard test cluster
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
max_connections = 200
CONF
    say "created a cluster in $dir/data (port $port)"
fi

port="$(sed -n "s/^port = \([0-9]*\)$/\1/p" "$dir/data/postgresql.conf" | tail -n 1)"
if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    if port_in_use "$port"; then
        say "port $port is taken by another program; remove $dir to start over on a free port"
        exit 1
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$log" -w -t 60 start >/dev/null \
        || { tail -n 20 "$log" >&2; exit 1; }
fi
echo "postgres://postgres@127.0.0.1:$port/postgres"
