#!/usr/bin/env bash
# File ingest at two input sizes (about 1 million and 10 million signals), with wall time and
# peak memory (max RSS) from /usr/bin/time. Peak memory stays bounded as input grows: the lake
# writer holds one batch and the key sets of recently used month partitions up to
# ingest.dedup_cache_keys, never the whole input. Figures go to docs/BENCHMARKS.md.
#
#   bash scripts/bench-ingest-scale.sh                            # 1 and 10 million
#   SIZES="145000 1450000 2900000" bash scripts/bench-ingest-scale.sh   # and 20 million
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=target/release/lantern
WORK="${WORK:-${TMPDIR:-/tmp}/lantern-bench}"
SIZES="${SIZES:-145000 1450000}"
mkdir -p "$WORK"
export LANTERN_NO_PROGRESS=1
for hh in $SIZES; do
  sim="$WORK/sim-$hh"
  [ -f "$sim/truth/manifest.json" ] || "$BIN" simulate --households "$hh" --months 24 --seed 1 --out "$sim" >/dev/null
  lines=$(cat "$sim"/signals/*.ndjson | wc -l)
  bytes=$(cat "$sim"/signals/*.ndjson | wc -c)
  rm -rf "$WORK/data-$hh"
  /usr/bin/time -v "$BIN" --data-dir "$WORK/data-$hh" ingest --ingest-day 2026-11-01 \
    --file "$sim"/signals/*.ndjson > "$WORK/ingest-$hh.out" 2> "$WORK/time-$hh.txt"
  secs=$(grep "Elapsed (wall clock)" "$WORK/time-$hh.txt" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident" "$WORK/time-$hh.txt" | awk '{print $NF}')
  awk -v hh="$hh" -v n="$lines" -v b="$bytes" -v s="$secs" -v r="$rss" 'BEGIN {
    printf "households=%d signals=%d input=%.0fMB wall=%.1fs signals/s=%.0f MB/s=%.1f peak_rss=%.0fMB\n",
      hh, n, b/1e6, s, n/s, b/1e6/s, r/1024 }'
done
