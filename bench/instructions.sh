#!/usr/bin/env bash
# Instructions per core operation, counted by callgrind: a figure other load
# on the machine cannot disturb, for before/after comparisons (bench/README.md).
#   bash bench/instructions.sh [N]     (N operations of each kind, default 20000)
# Runs the core bench in `TESSERA_BENCH_OPS` mode under
# `valgrind --tool=callgrind --toggle-collect='*run_ops*'`, so setup is not
# counted, and prints instructions per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo bench -p tessera --bench core --no-run 2>/dev/null
bin="$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/core-* | grep -v '\.d$' | head -1)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
printf '%-32s %12s\n' operation instructions/op
for op in baseline client_credentials code_issue_and_exchange_pkce refresh_rotation introspection verify_bearer; do
    TESSERA_BENCH_OPS="$op:$n" valgrind --tool=callgrind --toggle-collect='*run_ops*' \
        --callgrind-out-file="$out/$op.out" "$bin" >/dev/null 2>"$out/$op.err"
    total="$(grep -m1 '^summary:' "$out/$op.out" | awk '{print $2}')"
    printf '%-32s %12d\n' "$op" $((total / n))
done
