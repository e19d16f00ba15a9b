#!/usr/bin/env bash
# Stops the PostgreSQL cluster postgres-up.sh started and removes its temp dir.
#
# Usage: postgres-down.sh [ENV_FILE | DIR | --all]
#   ENV_FILE: the file postgres-up.sh wrote (its TESSERA_POSTGRES_DIR is stopped);
#   DIR: a TESSERA_POSTGRES_DIR; with no argument, $TESSERA_POSTGRES_DIR (as
#   exported by `eval "$(postgres-up.sh)"`);
#   --all: every cluster listed in $TESSERA_POSTGRES_REGISTRY (default: every
#   one any postgres-up.sh started on this machine; careful on a shared machine).
set -uo pipefail

registry="${TESSERA_POSTGRES_REGISTRY:-${TMPDIR:-/tmp}/tessera-postgres-dirs}"
arg="${1:-}"
dirs=()
if [ "$arg" = "--all" ]; then
    if [ -f "$registry" ]; then
        while IFS= read -r d; do [ -n "$d" ] && dirs+=("$d"); done <"$registry"
    fi
elif [ -n "$arg" ] && [ -f "$arg" ]; then
    d=$(sed -n 's/^export TESSERA_POSTGRES_DIR=//p' "$arg" | tail -n1)
    [ -n "$d" ] && dirs+=("$d")
elif [ -n "$arg" ]; then
    dirs+=("$arg")
elif [ -n "${TESSERA_POSTGRES_DIR:-}" ]; then
    dirs+=("$TESSERA_POSTGRES_DIR")
else
    echo "usage: postgres-down.sh ENV_FILE | DIR | --all (or set TESSERA_POSTGRES_DIR)" >&2
    exit 2
fi

for d in ${dirs[@]+"${dirs[@]}"}; do
    case "$d" in */tessera-postgres.*) ;; *) echo "postgres-down: refusing odd dir $d" >&2; continue ;; esac
    if [ -x "$d/ctl" ]; then
        # Immediate: the data is thrown away anyway. Bounded inside ctl.
        bash "$d/ctl" kill >/dev/null 2>&1 || true
    fi
    # A postmaster that did not stop (e.g. frozen) is killed.
    pidfile="$d/data/postmaster.pid"
    if [ -f "$pidfile" ]; then
        pid=$(head -n1 "$pidfile" 2>/dev/null || true)
        case "$pid" in
            '' | *[!0-9]*) ;;
            *)
                if ps -p "$pid" -o args= 2>/dev/null | grep -q postgres; then
                    kill -9 "$pid" 2>/dev/null || true
                    # Its backends go with it once the postmaster is gone.
                    sleep 0.2
                fi
                ;;
        esac
    fi
    rm -rf "$d"
    if [ -f "$registry" ]; then
        tmp="$registry.$$.tmp"
        grep -vxF "$d" "$registry" >"$tmp" || true
        mv "$tmp" "$registry"
    fi
done
exit 0
