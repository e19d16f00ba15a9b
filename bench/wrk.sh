#!/usr/bin/env bash
# An independent load run with wrk (bench/README.md, "wrk"): photo-provider
# as shipped (default RUST_LOG, every token request logged at INFO, stderr
# to a file) against the bare handler doing the minimal work
# (`tessera-bench --serve-bare`) and against the bare handler plus one
# in-memory insert (`--serve-bare-map`), then photo-provider on Redis against the
# bare handler plus one Redis round trip (`--serve-bare --redis`), on a
# throwaway Redis. client_credentials (POST /token), ROUNDS x DURATION per
# server, provider and ceiling alternating; nothing pinned.
#
#   bash bench/wrk.sh [BIN_DIR]     # default target/release; the binaries
#                                   # photo-provider and tessera-bench
# Environment: ROUNDS (3), DURATION (10s), CONNECTIONS (64), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release}"
rounds="${ROUNDS:-3}"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-64}"
threads="${THREADS:-2}"
for b in photo-provider tessera-bench; do
    [ -x "$bin/$b" ] || { echo "wrk.sh: $bin/$b not found (cargo build --release -p photo-provider -p tessera-bench)" >&2; exit 1; }
done
if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk.sh: installing wrk from Debian packages" >&2
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

work="$(mktemp -d)"
redis_env="$work/redis.env"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    bash storage-redis/scripts/redis-down.sh "$redis_env" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
bash storage-redis/scripts/redis-up.sh "$redis_env" >/dev/null 2>&1
# shellcheck disable=SC1090
. "$redis_env"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 10000))
        port_free "$p" && { echo "$p"; return; }
    done
}
wait_port() {
    local i
    for i in $(seq 1 200); do
        port_free "$1" || return 0
        sleep 0.05
    done
    echo "wrk.sh: nothing listens on $1" >&2
    exit 1
}

p_mem=$(pick_port)
env -u RUST_LOG "$bin/photo-provider" --listen "127.0.0.1:$p_mem" >/dev/null 2>"$work/provider-memory.log" &
pids+=($!)
wait_port "$p_mem"
p_bare=$(pick_port)
"$bin/tessera-bench" --serve-bare "127.0.0.1:$p_bare" >/dev/null &
pids+=($!)
wait_port "$p_bare"
p_bmap=$(pick_port)
"$bin/tessera-bench" --serve-bare-map "127.0.0.1:$p_bmap" >/dev/null &
pids+=($!)
wait_port "$p_bmap"
p_red=$(pick_port)
env -u RUST_LOG "$bin/photo-provider" --listen "127.0.0.1:$p_red" --store "$TESSERA_REDIS_URL" >/dev/null 2>"$work/provider-redis.log" &
pids+=($!)
wait_port "$p_red"
p_bred=$(pick_port)
"$bin/tessera-bench" --serve-bare "127.0.0.1:$p_bred" --redis "$TESSERA_REDIS_URL" >/dev/null &
pids+=($!)
wait_port "$p_bred"

# backup-job's secret (photobook::clients, DEMO-CONTRACT.md).
auth="Basic $(printf 'backup-job:%s' "$(grep -o 'BACKUP_JOB_SECRET: &str = "[^"]*"' examples/photobook/src/clients.rs | sed 's/.*= "//; s/"$//')" | base64 -w0)"
cat >"$work/cc.lua" <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=photos.read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "$auth"
EOF

# One wrk run; prints req/s (non-2xx answers make the run fail).
run() {
    local out
    out="$(wrk -t"$threads" -c"$connections" -d"$duration" -s "$work/cc.lua" "http://127.0.0.1:$1/token")"
    if grep -q "Non-2xx" <<<"$out"; then
        echo "wrk.sh: errors from port $1:" >&2
        echo "$out" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

echo "# wrk: client_credentials, $connections connections, $threads threads, $rounds x $duration per server, alternating; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
ratio() { awk -v x="$1" -v y="$2" 'BEGIN {printf "%.2f", x / y}'; }
avg() { awk -v x="$1" -v n="$rounds" 'BEGIN {printf "%.0f", x / n}'; }
add() { awk -v x="$1" -v y="$2" 'BEGIN {print x + y}'; }

# Memory: the provider, the bare handler, and the bare handler plus one
# in-memory insert (the least a token store does), in turn each round.
echo "| memory | round | provider req/s | bare req/s | bare+insert req/s | provider / bare | provider / bare+insert |"
echo "|---|---:|---:|---:|---:|---:|---:|"
sp=0
sb=0
sm=0
for r in $(seq 1 "$rounds"); do
    a=$(run "$p_mem")
    b=$(run "$p_bare")
    m=$(run "$p_bmap")
    sp=$(add "$sp" "$a")
    sb=$(add "$sb" "$b")
    sm=$(add "$sm" "$m")
    echo "| provider (memory) | $r | $a | $b | $m | $(ratio "$a" "$b") | $(ratio "$a" "$m") |"
done
echo "| provider (memory) | all | $(avg "$sp") | $(avg "$sb") | $(avg "$sm") | **$(ratio "$sp" "$sb")** | **$(ratio "$sp" "$sm")** |"
echo

echo "| pair | round | provider req/s | ceiling req/s | ratio |"
echo "|---|---:|---:|---:|---:|"
for pair in "redis:$p_red:$p_bred:bare+SET"; do
    IFS=: read -r name pp cp cname <<<"$pair"
    sp=0
    sc=0
    for r in $(seq 1 "$rounds"); do
        a=$(run "$pp")
        b=$(run "$cp")
        sp=$(awk -v x="$sp" -v y="$a" 'BEGIN {print x + y}')
        sc=$(awk -v x="$sc" -v y="$b" 'BEGIN {print x + y}')
        echo "| provider ($name) / $cname | $r | $a | $b | $(awk -v x="$a" -v y="$b" 'BEGIN {printf "%.2f", x / y}') |"
    done
    echo "| provider ($name) / $cname | all | $(awk -v x="$sp" -v n="$rounds" 'BEGIN {printf "%.0f", x / n}') | $(awk -v x="$sc" -v n="$rounds" 'BEGIN {printf "%.0f", x / n}') | **$(awk -v x="$sp" -v y="$sc" 'BEGIN {printf "%.2f", x / y}')** |"
done
echo
echo "provider log lines written (logs on): memory $(wc -l <"$work/provider-memory.log"), redis $(wc -l <"$work/provider-redis.log")"
