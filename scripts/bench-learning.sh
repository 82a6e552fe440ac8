#!/usr/bin/env bash
# The learning settings, A/B, against the simulator's ground truth (figures in
# docs/BENCHMARKS.md). Each run is the whole demo pipeline (simulate, Kafka ingest, train with
# the promotion gate, screen tonight) on one seed; it prints the precision of tonight's lists
# against who was really in crisis, for the model the gate made current and for the rule.
#
#   bash scripts/bench-learning.sh [HOUSEHOLDS] [SEED ...]
#
# Variants (environment overrides of config/default.toml):
#   plain      no reject inference, no exploration
#   reject     reject inference at its defaults, no exploration
#   defaults   reject inference and exploration at their defaults
set -euo pipefail
N=${1:-50000}
shift || true
SEEDS=("${@:-7 8 9}")
[ ${#SEEDS[@]} -eq 1 ] && read -r -a SEEDS <<<"${SEEDS[0]}"
W=${LANTERN_BENCH_DIR:-/tmp/lantern-bench-learning}
cargo build --release --locked
L=$PWD/target/release/lantern
mkdir -p "$W"
export LANTERN_NO_PROGRESS=1 RUST_LOG=warn
printf '%-9s %5s %-12s %8s %-12s %8s %6s\n' variant seed model precision rule precision lift
for seed in "${SEEDS[@]}"; do
  for variant in plain reject defaults; do
    case $variant in
      plain) env=(LANTERN__MODEL__REJECT_INFERENCE__SHARE=0 LANTERN__SCREEN__EXPLORATION_SHARE=0) ;;
      reject) env=(LANTERN__SCREEN__EXPLORATION_SHARE=0) ;;
      defaults) env=() ;;
    esac
    out=$(env "${env[@]}" "$L" --data-dir "$W/$variant-$seed" demo --households "$N" --seed "$seed")
    # "  trees@1      123/456 = 27.0%" and the rule's line after it.
    read -r model mp < <(echo "$out" | grep -A1 "Precision against" | tail -1 | awk '{print $1, $NF}')
    read -r rule rp < <(echo "$out" | grep -A2 "Precision against" | tail -1 | awk '{print $1, $4}')
    lift=$(echo "$out" | grep "lift over the rule" | awk '{print $NF}')
    printf '%-9s %5s %-12s %8s %-12s %8s %6s\n' "$variant" "$seed" "$model" "$mp" "$rule" "$rp" "${lift:-?}"
    rm -rf "$W/$variant-$seed"
  done
done
