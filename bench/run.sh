#!/usr/bin/env bash
# Reproduces the tables of bench/README.md on this machine:
#   1. the core, one thread, per operation (criterion, `cargo bench -p tessera`);
#   2. tessera-bench: bytes per token, HTTP load on the memory store, on a
#      throwaway Redis and on a throwaway PostgreSQL (both started here,
#      stopped on exit), Redis round trips, soak.
# Extra arguments go to tessera-bench (e.g. --duration 5s, or --only postgres).
# SOAK=600s for a longer soak (default 120s).
set -euo pipefail
cd "$(dirname "$0")/.."
redis_env="$(mktemp)"
pg_env="$(mktemp)"
cleanup() {
    bash storage-redis/scripts/redis-down.sh "$redis_env" >/dev/null 2>&1 || true
    bash storage-postgres/scripts/postgres-down.sh "$pg_env" >/dev/null 2>&1 || true
    rm -f "$redis_env" "$pg_env"
}
trap cleanup EXIT
bash storage-redis/scripts/redis-up.sh "$redis_env" >/dev/null
bash storage-postgres/scripts/postgres-up.sh "$pg_env" >/dev/null
# shellcheck disable=SC1090
. "$redis_env"
# shellcheck disable=SC1090
. "$pg_env"
cargo bench -p tessera --bench core
cargo run --profile bench -p tessera-bench -- --redis "$TESSERA_REDIS_URL" \
    --postgres "$TESSERA_POSTGRES_URL" --soak "${SOAK:-120s}" "$@"
