#!/usr/bin/env bash
# Runs Tessera's whole test suite on a fresh machine:
#   - installs what the tests need from Debian packages when missing
#     (redis-server, postgresql, chromium + chromium-driver for the browser test),
#   - starts a standalone Redis and a 3-master Redis Cluster on free loopback ports,
#     and a throwaway PostgreSQL cluster (initdb in a temp dir, as the `postgres`
#     OS user when run as root) on a free loopback port,
#   - runs `cargo test --workspace` (unit, property, store conformance against
#     memory/Redis/Cluster/PostgreSQL, HTTP conformance against both adapters, end to end
#     in headless Chromium, doc tests),
#   - stops every server it started, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
# PostgreSQL's server binaries live outside PATH on Debian (/usr/lib/postgresql/<version>/bin).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 ||
    need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
    echo "test.sh: installing ${need[*]} from Debian packages" >&2
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

env_file="$(mktemp "${TMPDIR:-/tmp}/tessera-test-env.XXXXXX")"
pg_env_file="$(mktemp "${TMPDIR:-/tmp}/tessera-test-pg-env.XXXXXX")"
# Every PostgreSQL cluster this run starts (the shared one, and the fault
# tests' throwaway ones) is listed here, so cleanup stops exactly those.
export TESSERA_POSTGRES_REGISTRY="$(mktemp "${TMPDIR:-/tmp}/tessera-test-pg-dirs.XXXXXX")"
cleanup() {
    bash storage-redis/scripts/redis-down.sh "$env_file" >/dev/null 2>&1 || true
    bash storage-postgres/scripts/postgres-down.sh "$pg_env_file" >/dev/null 2>&1 || true
    bash storage-postgres/scripts/postgres-down.sh --all >/dev/null 2>&1 || true
    rm -f "$env_file" "$pg_env_file" "$TESSERA_POSTGRES_REGISTRY"
}
trap cleanup EXIT INT TERM

# A port found free can be taken before the server binds it: try again then.
for attempt in 1 2 3; do
    if bash storage-redis/scripts/redis-up.sh "$env_file" >/dev/null 2>/tmp/tessera-redis-up.log; then
        break
    fi
    if [ "$attempt" = 3 ]; then
        cat /tmp/tessera-redis-up.log >&2
        echo "test.sh: could not start Redis" >&2
        exit 1
    fi
done
# shellcheck disable=SC1090
source "$env_file"

# PostgreSQL: the same, with its own env file (TESSERA_POSTGRES_URL, ..._DIR).
for attempt in 1 2 3; do
    if bash storage-postgres/scripts/postgres-up.sh "$pg_env_file" >/dev/null 2>/tmp/tessera-postgres-up.log; then
        break
    fi
    if [ "$attempt" = 3 ]; then
        cat /tmp/tessera-postgres-up.log >&2
        echo "test.sh: could not start PostgreSQL" >&2
        exit 1
    fi
done
# shellcheck disable=SC1090
source "$pg_env_file"

# Build once: every test binary and every program, with one feature set. The
# process-level suites (HTTP conformance, end to end) then use these programs
# instead of building their own copies.
cargo test --workspace --no-run "$@"
bin_dir="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug"
export TESSERA_CONFORMANCE_BIN_DIR="$bin_dir" TESSERA_E2E_BIN_DIR="$bin_dir"

cargo test --workspace --no-fail-fast "$@"
