#!/usr/bin/env bash
# Reproduces the tables of bench/README.md on this machine:
#   1. the core, one thread, per operation (criterion, `cargo bench -p tessera`);
#   2. tessera-bench: bytes per token, HTTP load on the memory store, on a
#      throwaway Redis, on throwaway Redis Clusters of 1 and 3 masters and on
#      a throwaway PostgreSQL (all started here, stopped on exit), Redis
#      round trips, soak.
# Extra arguments go to tessera-bench (e.g. --duration 5s, or --only postgres).
# SOAK=600s for a longer soak (default 120s).
set -euo pipefail
cd "$(dirname "$0")/.."
redis_env="$(mktemp)"
cluster1_env="$(mktemp)"
pg_env="$(mktemp)"
cleanup() {
    bash storage-redis/scripts/redis-down.sh "$redis_env" >/dev/null 2>&1 || true
    bash storage-redis/scripts/redis-down.sh "$cluster1_env" >/dev/null 2>&1 || true
    bash storage-postgres/scripts/postgres-down.sh "$pg_env" >/dev/null 2>&1 || true
    rm -f "$redis_env" "$cluster1_env" "$pg_env"
}
trap cleanup EXIT
bash storage-redis/scripts/redis-up.sh "$redis_env" >/dev/null
REDIS_CLUSTER_MASTERS=1 bash storage-redis/scripts/redis-up.sh "$cluster1_env" >/dev/null
cluster1="$(. "$cluster1_env" && echo "$TESSERA_REDIS_CLUSTER_URLS")"
bash storage-postgres/scripts/postgres-up.sh "$pg_env" >/dev/null
# shellcheck disable=SC1090
. "$redis_env"
# shellcheck disable=SC1090
. "$pg_env"
cargo bench -p tessera --bench core
cargo run --profile bench -p tessera-bench -- --redis "$TESSERA_REDIS_URL" \
    --redis-cluster "$cluster1" --redis-cluster "$TESSERA_REDIS_CLUSTER_URLS" \
    --postgres "$TESSERA_POSTGRES_URL" --soak "${SOAK:-120s}" "$@"
