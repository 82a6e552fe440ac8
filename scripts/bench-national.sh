#!/usr/bin/env bash
# A night at scale, incremental signal state against the full recomputation, in one run
# (figures in docs/BENCHMARKS.md, "National scale").
#
#   bash scripts/bench-national.sh [HOUSEHOLDS] [MONTHS] [WORKDIR]
#
# 1. simulates a population; the last two days' signals are held back as "tonight's delivery";
# 2. ingests the history, imports the reference, builds the signal state (first build);
# 3. ingests tonight's delivery and brings the state up to date (the incremental step);
# 4. trains and screens with the state, then with LANTERN__FEATURES__SOURCE=lake (the full
#    recomputation from the raw lake: the baseline), each under /usr/bin/time -v.
# Prints one line per step: wall seconds and peak RSS. Results are in $W/results.tsv.
# LANTERN_BENCH_NIGHT_ONLY=1 stops after the state's screening (no training, no full
# recomputation, no end to end): for the largest populations. There the simulated signal files
# are removed as they are split and the history's once it is ingested (10 million households ×
# 24 months is about 20 GB of NDJSON),
# and LANTERN_BENCH_MODEL=DATA_DIR/models/NAME@VERSION screens with a model trained on another
# run's population (training at 10 million is not what the night measures).
# The history's one-off load gets a dedup cache large enough for the whole history
# (LANTERN_BENCH_DEDUP_KEYS, default 80 million fingerprints, about 2.5 GB): the nightly
# delivery uses the configured default.
set -euo pipefail
N=${1:-1000000}
M=${2:-24}
W=${3:-/tmp/lantern-bench-national}
cargo build --release --locked
ROOT=$PWD
L=$ROOT/target/release/lantern
rm -rf "$W" && mkdir -p "$W" && cd "$W"
export LANTERN_NO_PROGRESS=1 RUST_LOG=${RUST_LOG:-warn}
NIGHT=2026-10-31
: > results.tsv
t() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o time.out "$@" > "$name.out" 2> "$name.err" || { cat "$name.err" >&2; exit 1; }
  read -r secs kb < time.out
  printf "%s\t%s\t%s\n" "$name" "$secs" "$kb" | tee -a results.tsv
}
t simulate "$L" simulate --households "$N" --months "$M" --out sim
mkdir -p history tonight
TONIGHT=(-e '"observed_on":"2026-10-30"' -e '"observed_on":"2026-10-31"')
for f in sim/signals/*.ndjson; do
  b=$(basename "$f")
  grep "${TONIGHT[@]}" "$f" > "tonight/$b" || true
  if [ -n "${LANTERN_BENCH_NIGHT_ONLY:-}" ] && [ ! -s "tonight/$b" ]; then
    # Nothing of tonight in it (the monthly arrears): the history is the file itself. A copy
    # would need its size again on disk (44 GB at 23 million).
    mv "$f" "history/$b"
    continue
  fi
  grep -v "${TONIGHT[@]}" "$f" > "history/$b" || true
  if [ -n "${LANTERN_BENCH_NIGHT_ONLY:-}" ]; then rm "$f"; fi
done
wc -l history/*.ndjson tonight/*.ndjson | tail -n +1 | sed 's/^/# /'
LANTERN__INGEST__DEDUP_CACHE_KEYS=${LANTERN_BENCH_DEDUP_KEYS:-80000000} t ingest-history "$L" --data-dir d ingest --file history/*.ndjson sim/outcomes/case-outcomes.ndjson --ingest-day 2026-11-01
# At the largest sizes the history's NDJSON (46 GB at 23 million) is not kept once it is in
# the lake: the night reads only the lake and the state.
if [ -n "${LANTERN_BENCH_NIGHT_ONLY:-}" ]; then rm -r history; fi
t import "$L" --data-dir d import --households sim/households.csv --referrals sim/history/referrals.ndjson
t state-first-build "$L" --data-dir d lake state
t ingest-tonight "$L" --data-dir d ingest --file tonight/*.ndjson --ingest-day 2026-11-01
t state-update-tonight "$L" --data-dir d lake state
if [ -n "${LANTERN_BENCH_NIGHT_ONLY:-}" ]; then
  MODEL=()
  if [ -n "${LANTERN_BENCH_MODEL:-}" ]; then
    mkdir -p d/models && cp -r "$LANTERN_BENCH_MODEL" d/models/
    MODEL=(--model "$(basename "$LANTERN_BENCH_MODEL")")
  fi
  t screen-state "$L" --data-dir d screen --as-of "$NIGHT" "${MODEL[@]}"
  t screen-state-again "$L" --data-dir d screen --as-of "$NIGHT" "${MODEL[@]}"
  grep -h "Time by phase" screen-state.out screen-state-again.out | sed 's/^/# /'
  du -sh d/lake d/state | sed 's/^/# /'
  exit 0
fi
t train-state "$L" --data-dir d train --as-of "$NIGHT"
t screen-state "$L" --data-dir d screen --as-of "$NIGHT"
t screen-state-again "$L" --data-dir d screen --as-of "$NIGHT"
LANTERN__FEATURES__SOURCE=lake t screen-lake "$L" --data-dir d screen --as-of "$NIGHT"
LANTERN__FEATURES__SOURCE=lake t train-lake "$L" --data-dir d train --as-of "$NIGHT"
du -sh d/lake d/state | sed 's/^/# /'
# End to end, raw NDJSON to issued lists in a fresh data directory (ingest, import, train,
# screen, issue), against the conventional pipeline (DuckDB + LightGBM, scripts/baseline) on
# the same files in the same run.
e2e() {
  "$L" --data-dir e ingest --file sim/signals/*.ndjson sim/outcomes/case-outcomes.ndjson --ingest-day 2026-11-01
  "$L" --data-dir e import --households sim/households.csv --referrals sim/history/referrals.ndjson
  "$L" --data-dir e train --as-of "$NIGHT"
  "$L" --data-dir e screen --as-of "$NIGHT"
  "$L" --data-dir e issue --as-of "$NIGHT"
}
export -f e2e; export L NIGHT
t end-to-end-lantern bash -c e2e
TOOLS="${LANTERN_TOOLS:-$HOME/.cache/lantern-tools}"
VENV="$TOOLS/baseline-venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "duckdb==1.4.*" "lightgbm==4.*" "numpy<3" "pandas<3"
fi
REGISTRY=$ROOT/../shared/data/districts.csv
t end-to-end-baseline "$VENV/bin/python" "$ROOT/scripts/baseline/baseline.py" --sim sim --registry "$REGISTRY" \
  --train-as-of "$NIGHT" --nights "$NIGHT" --lists --capacity-scale 1 --ingest-day 2026-11-01 --out baseline
