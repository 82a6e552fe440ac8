#!/usr/bin/env bash
# The yardstick (issue 15.4): Lantern against a conventional pipeline (DuckDB features +
# LightGBM, scripts/baseline/baseline.py), today's rule and a full-label ceiling, on the same
# simulated population, scored by one scorer (scripts/baseline/score.py) against the
# simulator's ground truth. Figures go to docs/BENCHMARKS.md.
#
#   bash scripts/bench-yardstick.sh [HOUSEHOLDS] [SEEDS]
#   LANTERN_BENCH_SEATS=10 bash scripts/bench-yardstick.sh 200000 "7 8 9"   (ten times the seats)
#
# For each seed: simulate HOUSEHOLDS x 24 months; then twice, once with the SPEC §3 outcome
# feed alone (no lists: referral dates estimated) and once with the legacy lists imported:
# Lantern ingests, imports, trains as of the first night (the promotion gate decides which model
# screens) and screens three nights; the baseline does the same from the same files. The
# ceiling (LightGBM on the truth for every screened household) and the rule run once per seed.
# The Python side lives in a venv under the tool cache, built on first use.
set -euo pipefail
N=${1:-200000}
SEEDS=${2:-"7 8 9"}
NIGHTS=(2026-09-30 2026-10-15 2026-10-31)
ROOT=$PWD
W=${LANTERN_BENCH_DIR:-/tmp/lantern-yardstick}
TOOLS="${LANTERN_TOOLS:-$HOME/.cache/lantern-tools}"
VENV="$TOOLS/baseline-venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "duckdb==1.4.*" "lightgbm==4.*" "numpy<3" "pandas<3"
fi
PY="$VENV/bin/python"
cargo build --release --locked
L=$ROOT/target/release/lantern
REGISTRY=$ROOT/../shared/data/districts.csv
# Capacity follows the population (the country's seats × N / 23 million), times
# LANTERN_BENCH_SEATS (default 1). At 200,000 households one seat per district leaves no room
# between the baseline and the full-label ceiling; raising it for every pipeline alike does.
SCALE=$(python3 -c "print($N / 23000000 * ${LANTERN_BENCH_SEATS:-1})")
export LANTERN_NO_PROGRESS=1 RUST_LOG=warn LANTERN__SCREEN__CAPACITY_SCALE=$SCALE
mkdir -p "$W"
RESULTS=$W/results.tsv
: > "$RESULTS"
for seed in $SEEDS; do
  S=$W/s$seed
  rm -rf "$S" && mkdir -p "$S"
  "$L" simulate --households "$N" --months 24 --seed "$seed" --out "$S/sim" >/dev/null
  TRUTH=$S/sim/truth/crisis_episodes.csv
  lists=()
  for mode in outcomes lists; do
    D=$S/lantern-$mode
    "$L" --data-dir "$D" ingest --file "$S"/sim/signals/*.ndjson "$S/sim/outcomes/case-outcomes.ndjson" --ingest-day 2026-11-01 >/dev/null
    if [ $mode = lists ]; then
      "$L" --data-dir "$D" import --households "$S/sim/households.csv" --referrals "$S/sim/history/referrals.ndjson" >/dev/null
      extra=(--lists --exclusions)
    else
      "$L" --data-dir "$D" import --households "$S/sim/households.csv" >/dev/null
      extra=()
    fi
    "$L" --data-dir "$D" train --as-of "${NIGHTS[0]}" > "$S/train-$mode.txt"
    for night in "${NIGHTS[@]}"; do
      "$L" --data-dir "$D" screen --as-of "$night" >/dev/null
      cp "$D/drafts/as_of=$night/referrals.parquet" "$S/lantern-$mode-$night.parquet"
      lists+=("lantern-$mode@$night=$S/lantern-$mode-$night.parquet")
    done
    # The trees as an operator's override would screen them (`lantern promote trees@1`),
    # whatever the gate decided: what the gate's decision costs or saves.
    for night in "${NIGHTS[@]}"; do
      "$L" --data-dir "$D" screen --as-of "$night" --model trees >/dev/null
      cp "$D/drafts/as_of=$night/referrals.parquet" "$S/trees-$mode-$night.parquet"
      lists+=("trees-if-promoted-$mode@$night=$S/trees-$mode-$night.parquet")
    done
    "$PY" "$ROOT/scripts/baseline/baseline.py" --sim "$S/sim" --registry "$REGISTRY" \
      --train-as-of "${NIGHTS[0]}" --nights "${NIGHTS[@]}" --capacity-scale "$SCALE" --ingest-day 2026-11-01 \
      --out "$S/baseline-$mode" "${extra[@]}" 2> "$S/baseline-$mode.log"
    for night in "${NIGHTS[@]}"; do
      lists+=("baseline-$mode@$night=$S/baseline-$mode/$night.csv")
    done
  done
  # Today's rule from the outcomes-only lake (no learning involved), and the ceiling.
  for night in "${NIGHTS[@]}"; do
    "$L" --data-dir "$S/lantern-outcomes" screen --as-of "$night" --model rule >/dev/null
    cp "$S/lantern-outcomes/drafts/as_of=$night/referrals.parquet" "$S/rule-$night.parquet"
    lists+=("rule@$night=$S/rule-$night.parquet")
  done
  "$PY" "$ROOT/scripts/baseline/baseline.py" --sim "$S/sim" --registry "$REGISTRY" \
    --train-as-of "${NIGHTS[0]}" --nights "${NIGHTS[@]}" --capacity-scale "$SCALE" --ingest-day 2026-11-01 \
    --out "$S/ceiling" --ceiling 2> "$S/ceiling.log"
  for night in "${NIGHTS[@]}"; do
    lists+=("ceiling@$night=$S/ceiling/$night.csv")
  done
  args=()
  for l in "${lists[@]}"; do args+=(--list "$l"); done
  "$PY" "$ROOT/scripts/baseline/score.py" --truth "$TRUTH" "${args[@]}" | sed "s/^/$seed\t/" | tee -a "$RESULTS"
done
echo "== by pipeline (mean over seeds and nights): precision, recall"
"$PY" - "$RESULTS" <<'EOF'
import sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    seed, name, night, listed, hits, p, r = line.rstrip("\n").split("\t")
    rows[name.split("@")[0]].append((float(p), float(r), seed, night))
base = {m: [x for x in rows.get(f"baseline-{m}", [])] for m in ("outcomes", "lists")}
for name, v in sorted(rows.items()):
    p = sum(x[0] for x in v) / len(v)
    r = sum(x[1] for x in v) / len(v)
    line = f"{name:20s} precision {p:.4f}  recall {r:.4f}  ({len(v)} nights)"
    mode = name.split("-")[-1]
    if name.startswith("lantern-") and base.get(mode):
        b = {(x[2], x[3]): x[0] for x in base[mode]}
        ratios = [x[0] / b[(x[2], x[3])] for x in v if b.get((x[2], x[3]))]
        if ratios:
            line += f"  vs baseline: mean {sum(ratios)/len(ratios):.3f}x, worst night {min(ratios):.3f}x"
    print(line)
EOF
