#!/bin/sh
# Runs every fuzz target one after another, each until 10 million
# executions or SECONDS_PER_TARGET seconds, whichever comes first, then
# minimises its corpus. Usage: fuzz/run-all.sh [seconds per target] [targets...]
# Figures go to fuzz/artifacts/stats-<target>.txt (libFuzzer's final stats).
set -eu
cd "$(dirname "$0")"
per_target=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-"scope params redirect_uri basic bearer login_handle token authorize"}
mkdir -p artifacts
for t in $targets; do
    start=$(date +%s)
    nice -n 19 cargo +nightly fuzz run -O -s none "$t" -- \
        -runs=10000000 -max_total_time="$per_target" -print_final_stats=1 \
        -rss_limit_mb=2048 -timeout=10 -max_len=4096 \
        >"artifacts/log-$t.txt" 2>&1 || echo "$t: FAILED (see artifacts/log-$t.txt)"
    end=$(date +%s)
    {
        echo "target=$t seconds=$((end - start))"
        grep -E '^(Done|stat::)' "artifacts/log-$t.txt" || true
    } >"artifacts/stats-$t.txt"
    nice -n 19 cargo +nightly fuzz cmin -O -s none "$t" >"artifacts/cmin-$t.txt" 2>&1 || true
    echo "$t: $(ls "corpus/$t" | wc -l) files, $(du -sk "corpus/$t" | cut -f1) KiB" >>"artifacts/stats-$t.txt"
done
