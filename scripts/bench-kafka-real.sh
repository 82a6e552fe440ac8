#!/usr/bin/env bash
# Kafka ingest throughput against a real broker process (tansu, SQLite storage, loopback):
# pre-fills the topics with a simulated population, then times `lantern ingest --kafka
# --until-idle` from the first poll to the last commit. Figures go to docs/BENCHMARKS.md.
#
#   HOUSEHOLDS=145000 bash scripts/bench-kafka-real.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=target/release/lantern
TANSU="$(bash scripts/tansu.sh install)"
HH="${HOUSEHOLDS:-145000}"
WORK="${WORK:-${TMPDIR:-/tmp}/lantern-bench-kafka}"
PORT="${PORT:-19093}"
rm -rf "$WORK" && mkdir -p "$WORK/broker"
export LANTERN_NO_PROGRESS=1
"$BIN" simulate --households "$HH" --months 24 --seed 1 --out "$WORK/sim" >/dev/null
(cd "$WORK/broker" && exec "$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" \
   --advertised-listener-url "tcp://127.0.0.1:$PORT" --storage-engine sqlite://tansu.db \
   > broker.log 2>&1) &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true' EXIT
until grep -q "ready in" "$WORK/broker/broker.log" 2>/dev/null; do sleep 0.2; done
for t in signals.utility-arrears signals.council-reports signals.service-gaps case-outcomes signals.dead-letter; do
  "$TANSU" topic create "$t" --partitions 3 --broker "tcp://127.0.0.1:$PORT" >/dev/null
done
export LANTERN__KAFKA__BROKERS="127.0.0.1:$PORT"
start=$(date +%s.%N)
"$BIN" produce --sim "$WORK/sim" > "$WORK/produce.out"
mid=$(date +%s.%N)
/usr/bin/time -v "$BIN" --data-dir "$WORK/data" ingest --kafka --until-idle --ingest-day 2026-11-01 \
  > "$WORK/ingest.out" 2> "$WORK/ingest.time"
end=$(date +%s.%N)
cat "$WORK/produce.out" "$WORK/ingest.out"
bytes=$(cat "$WORK"/sim/signals/*.ndjson "$WORK"/sim/outcomes/*.ndjson | wc -c)
awk -v a="$start" -v b="$mid" -v c="$end" -v n="$bytes" 'BEGIN {
  printf "produce %.1fs, ingest %.1fs (%.1f MB of messages, %.1f MB/s first poll to last commit)\n",
    b-a, c-b, n/1e6, n/1e6/(c-b) }'
grep "Maximum resident" "$WORK/ingest.time"
