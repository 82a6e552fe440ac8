#!/usr/bin/env bash
# Ingest into a lake on an S3-compatible object store against ingest into a folder lake, the
# same NDJSON files, alternating, in one run (docs/BENCHMARKS.md). The store is moto's server
# (scripts/moto.sh) on 127.0.0.1: a Python process on the same two cores, so this measures
# what the object-store path costs here, not what S3 would.
#
#   scripts/bench-object-store.sh SIM_DIR [ROUNDS]
#
# SIM_DIR is a `lantern simulate --out` folder. Each round ingests every signal and outcome
# file into a fresh data directory: once with the lake in a new prefix of the bucket, once in
# a folder. Prints one line per run: mode, wall seconds, peak MiB.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIM="$1"
ROUNDS="${2:-3}"
BIN="${LANTERN_BIN:-$HERE/target/release/lantern}"
[ -x "$BIN" ] || (cd "$HERE" && cargo build --release --locked --features s3 --bin lantern >&2)
MOTO="$(bash "$HERE/scripts/moto.sh" install)"
export LANTERN_NO_PROGRESS=1 RUST_LOG=warn AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
WORK="$(mktemp -d)"
PORT=$(( 20000 + RANDOM % 10000 ))
"$MOTO" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT" && break
  sleep 0.1
done
curl -s -f -X PUT "http://127.0.0.1:$PORT/bench-lake" >/dev/null

FILES=()
for f in signals/utility-arrears signals/council-reports signals/service-gaps outcomes/case-outcomes; do
  FILES+=("$SIM/$f.ndjson")
done

run() { # $1 mode, $2 round
  local data="$WORK/data-$1-$2" t0 t1
  if [ "$1" = s3 ]; then
    "$BIN" --data-dir "$data" lake use \
      "s3://bench-lake/round-$2?endpoint=http://127.0.0.1:$PORT&allow_http=true&region=us-east-1" >/dev/null
  fi
  t0=$(date +%s.%N)
  /usr/bin/time -v "$BIN" --data-dir "$data" ingest --ingest-day 2026-10-31 --file "${FILES[@]}" \
    >"$WORK/out" 2>"$WORK/time" || { tail -20 "$WORK/time" >&2; exit 1; }
  t1=$(date +%s.%N)
  printf '%s\t%.2f\t%d\n' "$1" "$(echo "$t1 - $t0" | bc)" \
    "$(( $(awk '/Maximum resident/ {print $6}' "$WORK/time") / 1024 ))"
  rm -rf "$data"
}

for r in $(seq 1 "$ROUNDS"); do
  run s3 "$r"
  run folder "$r"
done
