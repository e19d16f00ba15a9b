#!/bin/sh
# Runs every fuzz target one after another (one fuzzer at a time, nice 19),
# each for 10 million executions in one run, or SECONDS_PER_TARGET seconds,
# whichever comes first, seeded with the committed corpus; then minimises
# what it found and keeps the committed corpus small.
#
# Usage: fuzz/run-all.sh [seconds per target] [targets...]
#
# - New inputs go to a scratch directory ($FUZZ_WORK, default
#   /tmp/tessera-fuzz/<target>), never into corpus/: the committed corpora
#   stay the hand-written seeds (seed-*) plus at most $KEEP (default 200)
#   inputs in all, the smallest of a `-merge=1` minimisation of seeds,
#   committed corpus and finds.
# - -max_len=2304: every string these parsers take from a request passes the
#   2 KiB per-parameter limit (issue 11), so one value just over it, with
#   room for a few more parameters, is as long as an input needs to be;
#   longer inputs cost time and reach nothing new.
# - Figures go to artifacts/stats-<target>.txt (libFuzzer's final stats),
#   the whole log to artifacts/log-<target>.txt (artifacts/ is ignored by git).
set -eu
cd "$(dirname "$0")"
per_target=${1:-3600}
[ $# -gt 0 ] && shift
targets=${*:-"login_handle jwt scope params redirect_uri basic token bearer device par registration authorize dpop client_assertion"}
work=${FUZZ_WORK:-/tmp/tessera-fuzz}
keep=${KEEP:-200}
mkdir -p artifacts
for t in $targets; do
    mkdir -p "$work/$t" "artifacts/$t"
    cargo +nightly fuzz build -O -s none "$t" >"artifacts/build-$t.txt" 2>&1
    start=$(date +%s)
    # CPU seconds beside wall-clock ones: on a shared machine a nice 19
    # fuzzer gets what others leave, so exec/s per CPU second says more
    # about the target than exec/s.
    /usr/bin/time -f "cpu_user_s=%U cpu_sys_s=%S wall_s=%e" -o "artifacts/time-$t.txt" \
        nice -n 19 cargo +nightly fuzz run -O -s none "$t" "$work/$t" "corpus/$t" -- \
        -runs=10000000 -max_total_time="$per_target" -print_final_stats=1 \
        -rss_limit_mb=2048 -timeout=10 -max_len=2304 -artifact_prefix="artifacts/$t/" \
        >"artifacts/log-$t.txt" 2>&1 || echo "$t: FAILED (see artifacts/log-$t.txt)"
    end=$(date +%s)
    {
        echo "target=$t seconds=$((end - start)) date=$(date -u +%FT%TZ)"
        cat "artifacts/time-$t.txt"
        grep -E '^(Done|stat::)|INITED|DONE' "artifacts/log-$t.txt" | tail -12 || true
    } >"artifacts/stats-$t.txt"
    # Minimise seeds, committed corpus and finds together, then keep the
    # seeds and the smallest of the rest.
    rm -rf "$work/min-$t" && mkdir -p "$work/min-$t"
    bin=$(find "${CARGO_TARGET_DIR:-target}" -path "*release/$t" -type f | head -1)
    nice -n 19 "$bin" -merge=1 -max_len=2304 "$work/min-$t" "corpus/$t" "$work/$t" \
        >"artifacts/cmin-$t.txt" 2>&1
    seeds=$(for f in corpus/$t/seed-*; do sha1sum <"$f" | cut -d' ' -f1; done)
    find "corpus/$t" -type f ! -name 'seed-*' -delete
    room=$((keep - $(ls "corpus/$t" | wc -l)))
    ls -Sr "$work/min-$t" | while read -r f; do
        echo "$seeds" | grep -qx "$f" || echo "$f"
    done | head -n "$room" | while read -r f; do cp "$work/min-$t/$f" "corpus/$t/$f"; done
    echo "$t: merged $(ls "$work/min-$t" | wc -l), kept $(ls "corpus/$t" | wc -l) files, $(cat "corpus/$t"/* | wc -c) bytes" \
        >>"artifacts/stats-$t.txt"
done
