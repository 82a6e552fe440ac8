#!/usr/bin/env bash
# The night on a Ballista cluster of 1, 2 and 4 executors against the local engine, in one run
# (docs/DEPLOY.md, docs/BENCHMARKS.md). Each figure is the wall time and peak memory of
# `lantern screen` (the client process) and, on the cluster, the executors' summed peak.
#
#   scripts/bench-cluster.sh DATA_DIR AS_OF [ROUNDS]
#
# DATA_DIR holds a lake, a households reference and a current model (lantern simulate, ingest,
# import, train). The binary is built with `--features ballista` (scripts/ballista.sh bin).
# Rounds alternate local, 1, 2, 4 executors, so the machine's drift hits every setting alike.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$1"
AS_OF="$2"
ROUNDS="${3:-3}"
BIN="$(bash "$HERE/scripts/ballista.sh" bin)"
export LANTERN_BIN="$BIN" LANTERN_NO_PROGRESS=1 RUST_LOG=warn
WORK="$(mktemp -d)"
trap 'bash "$HERE/scripts/ballista.sh" stop "$WORK/cluster" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

peak_kb() { awk '/Maximum resident/ {print $6}' "$1"; }

run() { # $1 label, $2 engine
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v "$BIN" --data-dir "$DATA" screen --as-of "$AS_OF" --engine "$2" \
    >"$WORK/out" 2>"$WORK/time" || { tail -20 "$WORK/time" >&2; exit 1; }
  t1=$(date +%s.%N)
  printf '%s\t%.2f\t%d' "$1" "$(echo "$t1 - $t0" | bc)" "$(( $(peak_kb "$WORK/time") / 1024 ))"
}

printf 'round\tengine\twall_s\tclient_peak_mib\texecutors_peak_mib\n'
for r in $(seq 1 "$ROUNDS"); do
  printf '%s\t' "$r"; run local local; printf '\t-\n'
  for n in 1 2 4; do
    addr=$(BALLISTA_TASK_SLOTS=1 bash "$HERE/scripts/ballista.sh" start "$WORK/cluster" "$n")
    printf '%s\t' "$r"; run "ballista-$n" "$addr"
    # The executors' resident memory at the end of the night (their peak: VmHWM).
    hwm=0
    for f in "$WORK"/cluster/executor-*.pid; do
      kb=$(awk '/VmHWM/ {print $2}' "/proc/$(cat "$f")/status" 2>/dev/null || echo 0)
      hwm=$(( hwm + kb ))
    done
    printf '\t%d\n' $(( hwm / 1024 ))
    bash "$HERE/scripts/ballista.sh" stop "$WORK/cluster"
    rm -rf "$WORK/cluster"
  done
done
