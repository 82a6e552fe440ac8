#!/usr/bin/env bash
# Feature pipeline and training at scale, with the release binary (figures in docs/BENCHMARKS.md).
#
#   bash scripts/bench-features.sh [HOUSEHOLDS] [MONTHS] [WORKDIR]
#
# Simulates, ingests and imports a population, then measures with /usr/bin/time -v:
#   1. features as of one date for every screened household;
#   2. features for 12 month-end dates in one query, against one query per date;
#   3. `lantern train` (all three models) on every labelled past referral.
set -euo pipefail
N=${1:-1000000}
M=${2:-24}
W=${3:-/tmp/lantern-bench-features}
cargo build --release --locked
L=$PWD/target/release/lantern
rm -rf "$W" && mkdir -p "$W" && cd "$W"
export LANTERN_NO_PROGRESS=1 RUST_LOG=warn
t() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }
echo "== simulate $N households x $M months";  t "$L" simulate --households "$N" --months "$M" --out sim >/dev/null
echo "== ingest";  t "$L" --data-dir d ingest --file sim/signals/*.ndjson sim/outcomes/case-outcomes.ndjson --ingest-day 2026-11-01 | tail -2
echo "== import";  t "$L" --data-dir d import --households sim/households.csv --referrals sim/history/referrals.ndjson
echo "== features as of one date"; t "$L" --data-dir d features --as-of 2026-10-31 --out one.parquet
DATES=()
for m in 2025-11-30 2025-12-31 2026-01-31 2026-02-28 2026-03-31 2026-04-30 2026-05-31 2026-06-30 2026-07-31 2026-08-31 2026-09-30 2026-10-31; do DATES+=(--as-of "$m"); done
echo "== features for 12 dates, one query"; t "$L" --data-dir d features "${DATES[@]}" --out twelve.parquet
echo "== features for 12 dates, one query per date"; t "$L" --data-dir d features "${DATES[@]}" --separate --out twelve-separate.parquet
echo "== train (trees, logistic, rule)"; t "$L" --data-dir d train --as-of 2026-10-31
