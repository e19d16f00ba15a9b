#!/usr/bin/env bash
# Stops the Redis servers redis-up.sh started and removes their temp dirs.
#
# Usage: redis-down.sh [ENV_FILE | DIR | --all]
#   ENV_FILE: the file redis-up.sh wrote (its TESSERA_REDIS_DIR is stopped);
#   DIR: a TESSERA_REDIS_DIR; with no argument, $TESSERA_REDIS_DIR (as
#   exported by `eval "$(redis-up.sh)"`);
#   --all: every instance any redis-up.sh started on this machine (careful on
#   a machine others use too).
set -uo pipefail

registry="${TMPDIR:-/tmp}/tessera-redis-dirs"
arg="${1:-}"
dirs=()
if [ "$arg" = "--all" ]; then
    if [ -f "$registry" ]; then
        while IFS= read -r d; do [ -n "$d" ] && dirs+=("$d"); done <"$registry"
    fi
elif [ -n "$arg" ] && [ -f "$arg" ]; then
    d=$(sed -n 's/^export TESSERA_REDIS_DIR=//p' "$arg" | tail -n1)
    [ -n "$d" ] && dirs+=("$d")
elif [ -n "$arg" ]; then
    dirs+=("$arg")
elif [ -n "${TESSERA_REDIS_DIR:-}" ]; then
    dirs+=("$TESSERA_REDIS_DIR")
else
    echo "usage: redis-down.sh ENV_FILE | DIR | --all (or set TESSERA_REDIS_DIR)" >&2
    exit 2
fi

for d in ${dirs[@]+"${dirs[@]}"}; do
    case "$d" in */tessera-redis.*) ;; *) echo "redis-down: refusing odd dir $d" >&2; continue ;; esac
    if [ -f "$d/ports" ]; then
        while IFS= read -r p; do
            # Bounded: a frozen server never answers (it is killed below).
            timeout 3 redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
        done <"$d/ports"
        # Wait for them to be gone (pidfiles vanish on clean shutdown).
        for _ in $(seq 1 50); do
            ls "$d"/*/redis.pid >/dev/null 2>&1 || break
            sleep 0.1
        done
        # One that did not answer (e.g. frozen) is killed.
        for pidfile in "$d"/*/redis.pid; do
            [ -f "$pidfile" ] || continue
            pid=$(cat "$pidfile" 2>/dev/null || true)
            case "$pid" in '' | *[!0-9]*) continue ;; esac
            if ps -p "$pid" -o args= 2>/dev/null | grep -q redis-server; then
                kill -9 "$pid" 2>/dev/null || true
            fi
        done
    fi
    rm -rf "$d"
    if [ -f "$registry" ]; then
        grep -vxF "$d" "$registry" >"$registry.tmp" || true
        mv "$registry.tmp" "$registry"
    fi
done
exit 0
