#!/usr/bin/env bash
# A real Kafka-protocol broker for the integration tests: tansu (https://crates.io/crates/tansu),
# storing in SQLite, listening on 127.0.0.1 only.
#
#   scripts/tansu.sh install          # build once into the tool cache (about 25 min cold)
#   scripts/tansu.sh start DIR PORT   # start a broker with its data in DIR; prints its pid
#   scripts/tansu.sh topic DIR PORT NAME PARTITIONS
#
# The install is cached in $LANTERN_TOOLS (default ~/.cache/lantern-tools), keyed by version,
# so CI pays for it once per machine.
set -euo pipefail

TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
TOOLS="${LANTERN_TOOLS:-$HOME/.cache/lantern-tools}"
ROOT="$TOOLS/tansu-$TANSU_VERSION"
BIN="$ROOT/bin/tansu"

install() {
  if [ -x "$BIN" ]; then
    echo "$BIN"
    return
  fi
  # Everything but the final path goes to stderr: callers capture stdout as the binary's path
  # (apt-get prints progress on stdout even with -qq).
  {
    if ! command -v cmake >/dev/null 2>&1; then
      echo "tansu: installing cmake (needed to build tansu)" >&2
      bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" cmake
    fi
    echo "tansu: building tansu $TANSU_VERSION into $ROOT (one time, about 25 minutes)" >&2
    mkdir -p "$ROOT"
    cargo install tansu --version "$TANSU_VERSION" --locked --features libsql --root "$ROOT" >&2
  } >&2
  if [ ! -x "$BIN" ]; then
    echo "tansu: the build finished but $BIN is missing" >&2
    exit 1
  fi
  echo "$BIN"
}

case "${1:-}" in
  install) install ;;
  bin) echo "$BIN" ;;
  *) echo "usage: scripts/tansu.sh install|bin" >&2; exit 2 ;;
esac
