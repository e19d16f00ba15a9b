#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tessera-postgres tests: initdb
# into a temp dir, `pg_ctl start` on a free loopback port, trust auth on
# 127.0.0.1 (and the cluster's own socket dir), no fsync (test data only).
#
# Usage: postgres-up.sh [ENV_FILE]
#   Prints (or writes to ENV_FILE) lines to source:
#     export TESSERA_POSTGRES_URL=postgres://postgres@127.0.0.1:P/postgres
#     export TESSERA_POSTGRES_DIR=/tmp/tessera-postgres.XXXX   (what postgres-down.sh stops and removes)
#   The dir also holds `ctl` (`ctl start|stop|kill|status`: start again on the
#   same port, stop cleanly, stop at once as a crash would, ask), which the
#   fault tests use to stop and restart their own cluster.
# Installs postgresql from Debian's packages when initdb is missing (needs root).
# initdb refuses to run as root: as root, the cluster runs as the `postgres`
# OS user (made by the package) through `runuser`; otherwise as the caller.
# Binaries: $TESSERA_POSTGRES_BIN_DIR, else the newest /usr/lib/postgresql/*/bin,
# else initdb on PATH.
# Stop it with postgres-down.sh ENV_FILE (or DIR, or with TESSERA_POSTGRES_DIR
# set); `postgres-down.sh --all` stops every cluster postgres-up.sh started on
# this machine (listed in $TESSERA_POSTGRES_REGISTRY, default
# ${TMPDIR:-/tmp}/tessera-postgres-dirs: a test run can name its own list and
# stop exactly the clusters it started, its tests' throwaway ones included).
# If starting fails half way, what was started is stopped again.
set -euo pipefail

out="${1:-}"
registry="${TESSERA_POSTGRES_REGISTRY:-${TMPDIR:-/tmp}/tessera-postgres-dirs}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

find_bin_dir() {
    if [ -n "${TESSERA_POSTGRES_BIN_DIR:-}" ] && [ -x "$TESSERA_POSTGRES_BIN_DIR/initdb" ]; then
        echo "$TESSERA_POSTGRES_BIN_DIR"
        return 0
    fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then
        echo "$d"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

if ! bin=$(find_bin_dir); then
    echo "postgres-up: installing postgresql from Debian packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq postgresql >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null; }
    bin=$(find_bin_dir) || { echo "postgres-up: no initdb found after installing postgresql" >&2; exit 1; }
fi

# Who runs the cluster.
if [ "$(id -u)" = 0 ]; then
    run_as=(runuser -u postgres --)
    id postgres >/dev/null 2>&1 || { echo "postgres-up: running as root but there is no postgres user" >&2; exit 1; }
else
    run_as=()
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/tessera-postgres.XXXXXX")"
chmod 755 "$dir"
echo "$dir" >>"$registry"
started=0
on_exit() {
    if [ "$started" != 1 ]; then
        echo "postgres-up: failed; stopping what was started" >&2
        [ -f "$dir/postgres.log" ] && tail -n 30 "$dir/postgres.log" >&2
        bash "$here/postgres-down.sh" "$dir" >/dev/null 2>&1 || true
    fi
}
trap on_exit EXIT

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
pick_port() {
    local p i
    for i in $(seq 1 200); do
        # Below Linux's ephemeral range (32768+), so outgoing connections cannot take them.
        p=$((10000 + RANDOM % 20000))
        if port_free "$p"; then
            echo "$p"
            return 0
        fi
    done
    echo "postgres-up: no free port found" >&2
    return 1
}

port=$(pick_port)
mkdir -p "$dir/data" "$dir/socket"
if [ ${#run_as[@]} -gt 0 ]; then
    chown -R postgres: "$dir"
fi

"${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
    --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }

# Test settings: no durability work, room for many parallel test pools.
cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/socket'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
log_min_messages = warning
EOF

# `ctl`: start/stop this cluster again (the fault tests stop and restart it).
runner=""
[ ${#run_as[@]} -gt 0 ] && runner="runuser -u postgres --"
cat >"$dir/ctl" <<EOF
#!/usr/bin/env bash
# ctl start|stop|kill|status for the cluster in $dir (port $port).
set -uo pipefail
case "\${1:-}" in
    start) exec $runner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 start >/dev/null ;;
    stop) exec timeout 30 $runner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 20 stop >/dev/null ;;
    kill) exec timeout 30 $runner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 20 stop >/dev/null ;;
    status) exec $runner "$bin/pg_ctl" -D "$dir/data" status >/dev/null ;;
    *) echo "usage: ctl start|stop|kill|status" >&2; exit 2 ;;
esac
EOF
chmod 755 "$dir/ctl"
echo "$port" >"$dir/port"

bash "$dir/ctl" start || exit 1

ok=0
for i in $(seq 1 100); do
    if "${run_as[@]}" "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
        ok=1
        break
    fi
    sleep 0.1
done
if [ "$ok" != 1 ]; then
    echo "postgres-up: PostgreSQL on port $port did not become ready" >&2
    exit 1
fi

started=1
env_lines="export TESSERA_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres
export TESSERA_POSTGRES_DIR=$dir
export TESSERA_POSTGRES_BIN_DIR=$bin"
echo "$env_lines" >"$dir/env"
if [ -n "$out" ]; then
    echo "$env_lines" >"$out"
    echo "postgres-up: PostgreSQL ($bin) on 127.0.0.1:$port; env in $out" >&2
else
    echo "$env_lines"
fi
