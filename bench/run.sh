#!/usr/bin/env bash
# Reproduces the tables of bench/README.md on this machine:
#   1. the core, one thread, per operation (criterion, `cargo bench -p tessera`);
#   2. tessera-bench: bytes per token, HTTP load on the memory store and on a
#      throwaway Redis (started here, stopped on exit), Redis round trips, soak.
# Extra arguments go to tessera-bench (e.g. --duration 5s). SOAK=600s for a
# longer soak (default 120s).
set -euo pipefail
cd "$(dirname "$0")/.."
env_file="$(mktemp)"
trap 'bash storage-redis/scripts/redis-down.sh "$env_file" >/dev/null 2>&1 || true; rm -f "$env_file"' EXIT
bash storage-redis/scripts/redis-up.sh "$env_file" >/dev/null
# shellcheck disable=SC1090
. "$env_file"
cargo bench -p tessera --bench core
cargo run --profile bench -p tessera-bench -- --redis "$TESSERA_REDIS_URL" --soak "${SOAK:-120s}" "$@"
