#!/usr/bin/env bash
# A real Apache DataFusion Ballista cluster on this machine: one scheduler and N executors, each
# a process of its own on 127.0.0.1, for `--engine ballista://HOST:PORT`, the tests and the
# benchmarks (docs/DEPLOY.md).
#
#   scripts/ballista.sh start DIR [EXECUTORS]   # default 2; prints ballista://127.0.0.1:PORT
#   scripts/ballista.sh stop DIR
#   scripts/ballista.sh bin                     # build (once) and print the binary's path
#
# Every role runs from Lantern's own binary (`lantern cluster scheduler|executor`), built with
# the `ballista` cargo feature: one build, and every process knows Lantern's plan codec. The
# binary is $LANTERN_BIN if set (the tests pass their own), else target/release/lantern, built
# here the first time (cargo's own cache keeps it; about 15 minutes cold on two cores).
#
# DIR holds each process's pid, log and the executors' shuffle files; `stop` ends them all.
# Executors read an object-store lake named by LANTERN_LAKE (s3://BUCKET/PREFIX?…, as given to
# `lantern lake use`), with credentials from the AWS_* variables, all passed through.
# Environment: BALLISTA_TASK_SLOTS (tasks per executor, default 1 so that N executors use N
# cores), BALLISTA_WAIT_SECONDS (how long to wait for a port, default 60).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WAIT="${BALLISTA_WAIT_SECONDS:-60}"
SLOTS="${BALLISTA_TASK_SLOTS:-1}"

binary() {
  if [ -n "${LANTERN_BIN:-}" ]; then
    echo "$LANTERN_BIN"
    return
  fi
  local bin="$HERE/target/release/lantern"
  # cargo decides whether anything changed; a built tree costs a second.
  (cd "$HERE" && cargo build --release --locked --features ballista --bin lantern >&2)
  echo "$bin"
}

# A TCP port nobody uses at this moment, below the kernel's range for outgoing connections (so
# that no client socket of a busy test run takes it between the check and the bind).
free_port() {
  local p low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for _ in $(seq 1 200); do
    p=$(( 10000 + RANDOM % (low - 10000) ))
    if ! ss -Htan "sport = :$p" | grep -q .; then
      echo "$p"
      return
    fi
  done
  echo "ballista.sh: no free port found" >&2
  exit 1
}

# Waits until PORT accepts connections, or the process PID died, or WAIT seconds passed.
# Returns 2 if the process died because a port was taken meanwhile (the caller retries).
wait_port() {
  local port=$1 pid=$2 log=$3 name=$4
  local deadline=$(( $(date +%s) + WAIT ))
  until ss -Htln "sport = :$port" | grep -q .; do
    if ! kill -0 "$pid" 2>/dev/null; then
      if grep -q "Address already in use" "$log"; then
        echo "ballista.sh: the $name found a port taken; trying others" >&2
        return 2
      fi
      echo "ballista.sh: the $name exited before listening on $port; its log ($log):" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "ballista.sh: the $name is not listening on $port after ${WAIT}s; its log ($log):" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
}

start() {
  local dir=$1 executors=${2:-2}
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if compgen -G "$dir/*.pid" >/dev/null; then
    echo "ballista.sh: $dir already has a cluster (pid files); run 'scripts/ballista.sh stop $dir' first" >&2
    exit 1
  fi
  local bin
  bin="$(binary)"
  [ -x "$bin" ] || { echo "ballista.sh: $bin is not an executable" >&2; exit 1; }

  local sport attempt rc
  for attempt in 1 2 3 4 5; do
    sport=$(free_port)
    # setsid: the cluster outlives this script and a Ctrl-C in the caller's terminal.
    RUST_LOG="${RUST_LOG:-info}" LANTERN_NO_PROGRESS=1 setsid "$bin" cluster scheduler \
      --bind "127.0.0.1:$sport" >"$dir/scheduler.log" 2>&1 < /dev/null &
    echo $! >"$dir/scheduler.pid"
    rc=0
    wait_port "$sport" "$(cat "$dir/scheduler.pid")" "$dir/scheduler.log" scheduler || rc=$?
    [ "$rc" -eq 2 ] || break
  done
  [ "$rc" -eq 0 ] || exit 1

  for i in $(seq 1 "$executors"); do
    local fport gport
    for attempt in 1 2 3 4 5; do
      fport=$(free_port)
      gport=$(free_port)
      while [ "$gport" = "$fport" ]; do gport=$(free_port); done
      RUST_LOG="${RUST_LOG:-info}" LANTERN_NO_PROGRESS=1 setsid "$bin" cluster executor \
        --scheduler "127.0.0.1:$sport" --flight-port "$fport" --grpc-port "$gport" \
        --task-slots "$SLOTS" --work-dir "$dir/executor-$i" \
        >"$dir/executor-$i.log" 2>&1 < /dev/null &
      echo $! >"$dir/executor-$i.pid"
      rc=0
      wait_port "$fport" "$(cat "$dir/executor-$i.pid")" "$dir/executor-$i.log" "executor $i" || rc=$?
      [ "$rc" -eq 2 ] || break
    done
    [ "$rc" -eq 0 ] || exit 1
  done
  echo "ballista://127.0.0.1:$sport" | tee "$dir/address"
}

stop() {
  local dir=$1
  local pids=()
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    pids+=("$(cat "$f")")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local deadline=$(( $(date +%s) + 10 ))
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        kill -KILL "$p" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  done
  rm -f "$dir"/*.pid "$dir/address"
}

case "${1:-}" in
  start) [ -n "${2:-}" ] || { echo "usage: scripts/ballista.sh start DIR [EXECUTORS]" >&2; exit 2; }; start "$2" "${3:-2}" ;;
  stop) [ -n "${2:-}" ] || { echo "usage: scripts/ballista.sh stop DIR" >&2; exit 2; }; stop "$2" ;;
  bin) binary ;;
  *) echo "usage: scripts/ballista.sh start DIR [EXECUTORS] | stop DIR | bin" >&2; exit 2 ;;
esac
