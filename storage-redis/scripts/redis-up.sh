#!/usr/bin/env bash
# Starts the Redis servers the tessera-redis tests need, on free loopback ports:
#   (a) one standalone redis-server (appendonly, in a temp dir, daemonized);
#   (b) a 3-master Redis Cluster (no replicas), waited on until cluster_state:ok;
#       REDIS_CLUSTER_MASTERS=N for N masters instead (1 or more; the benchmark
#       compares 1 and 3).
#
# Usage: redis-up.sh [ENV_FILE]
#   Prints (or writes to ENV_FILE) lines to source:
#     export TESSERA_REDIS_URL=redis://127.0.0.1:P/
#     export TESSERA_REDIS_CLUSTER_URLS=redis://127.0.0.1:P1/,redis://127.0.0.1:P2/,redis://127.0.0.1:P3/
#     export TESSERA_REDIS_DIR=/tmp/tessera-redis.XXXX   (what redis-down.sh stops and removes)
# Installs redis-server from Debian's packages when it is missing (needs root).
# Stop them with redis-down.sh ENV_FILE (or DIR, or with TESSERA_REDIS_DIR set);
# `redis-down.sh --all` stops every instance redis-up.sh started on this machine.
# If starting fails half way, what was started is stopped again.
set -euo pipefail

out="${1:-}"
registry="${TMPDIR:-/tmp}/tessera-redis-dirs"

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "redis-up: installing redis-server from Debian packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq redis-server redis-tools >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq redis-server redis-tools >/dev/null; }
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/tessera-redis.XXXXXX")"
echo "$dir" >>"$registry"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
started=0
on_exit() {
    if [ "$started" != 1 ]; then
        echo "redis-up: failed; stopping what was started" >&2
        bash "$here/redis-down.sh" "$dir" >/dev/null 2>&1 || true
    fi
}
trap on_exit EXIT

# A port is free when nothing accepts on it; a cluster node also needs port+10000 (its bus).
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
taken=" "
pick_port() {
    local p i
    for i in $(seq 1 200); do
        # Below Linux's ephemeral range (32768+), so outgoing connections cannot take them.
        p=$((10000 + RANDOM % 12000))
        case "$taken" in *" $p "* | *" $((p + 10000)) "*) continue ;; esac
        if port_free "$p" && port_free "$((p + 10000))"; then
            taken="$taken$p $((p + 10000)) "
            echo "$p"
            return 0
        fi
    done
    echo "redis-up: no free port found" >&2
    return 1
}

wait_ping() {
    local p=$1 i
    for i in $(seq 1 100); do
        if [ "$(redis-cli -p "$p" ping 2>/dev/null)" = "PONG" ]; then return 0; fi
        sleep 0.1
    done
    echo "redis-up: redis-server on port $p did not answer; log:" >&2
    cat "$dir"/*/redis.log >&2 || true
    return 1
}

start_server() { # port subdir extra-args...
    local p=$1 sub=$2
    shift 2
    mkdir -p "$dir/$sub"
    redis-server --port "$p" --bind 127.0.0.1 --dir "$dir/$sub" --daemonize yes \
        --pidfile "$dir/$sub/redis.pid" --logfile "$dir/$sub/redis.log" \
        --save "" "$@" >/dev/null
    echo "$p" >>"$dir/ports"
}

masters="${REDIS_CLUSTER_MASTERS:-3}"
case "$masters" in '' | *[!0-9]* | 0)
    echo "redis-up: REDIS_CLUSTER_MASTERS must be a positive number" >&2
    exit 1
    ;;
esac
single=$(pick_port)
start_server "$single" standalone --appendonly yes
nodes=""
for _ in $(seq 1 "$masters"); do nodes="$nodes $(pick_port)"; done
for p in $nodes; do
    start_server "$p" "node-$p" --appendonly no --cluster-enabled yes \
        --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 5000
done
for p in $single $nodes; do wait_ping "$p"; done

if [ "$masters" -ge 3 ]; then
    # shellcheck disable=SC2046
    redis-cli --cluster create $(for p in $nodes; do echo "127.0.0.1:$p"; done) \
        --cluster-replicas 0 --cluster-yes >"$dir/cluster-create.log" 2>&1 ||
        { cat "$dir/cluster-create.log" >&2; exit 1; }
else
    # `redis-cli --cluster create` wants 3 masters: meet and split the slots by hand.
    set -- $nodes
    first=$1
    for p in "$@"; do
        [ "$p" = "$first" ] || redis-cli -p "$p" cluster meet 127.0.0.1 "$first" >/dev/null
    done
    n=$#
    i=0
    for p in "$@"; do
        lo=$((16384 * i / n))
        hi=$((16384 * (i + 1) / n - 1))
        redis-cli -p "$p" cluster addslotsrange "$lo" "$hi" >>"$dir/cluster-create.log" 2>&1 ||
            { cat "$dir/cluster-create.log" >&2; exit 1; }
        i=$((i + 1))
    done
fi

ok=0
for i in $(seq 1 150); do
    ok=1
    for p in $nodes; do
        redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
    done
    [ "$ok" = 1 ] && break
    sleep 0.2
done
if [ "$ok" != 1 ]; then
    echo "redis-up: cluster did not reach cluster_state:ok" >&2
    exit 1
fi

started=1
env_lines="export TESSERA_REDIS_URL=redis://127.0.0.1:$single/
export TESSERA_REDIS_CLUSTER_URLS=$(for p in $nodes; do printf 'redis://127.0.0.1:%s/,' "$p"; done | sed 's/,$//')
export TESSERA_REDIS_DIR=$dir"
echo "$env_lines" >"$dir/env"
if [ -n "$out" ]; then
    echo "$env_lines" >"$out"
    echo "redis-up: standalone on $single, cluster on$nodes; env in $out" >&2
else
    echo "$env_lines"
fi
