#!/usr/bin/env bash
# A local S3-compatible server for the object-store lake tests: moto's server mode
# (https://pypi.org/project/moto/), from PyPI into a virtual environment.
#
#   scripts/moto.sh install   # once per machine (about a minute); prints the moto_server path
#   scripts/moto.sh bin       # the path it installs to
#
# The tests start the server themselves on 127.0.0.1 (`moto_server -H 127.0.0.1 -p PORT`),
# one per test, and stop it when the test ends. The install is cached in $LANTERN_TOOLS
# (default ~/.cache/lantern-tools), keyed by version, like the tansu broker.
set -euo pipefail

MOTO_VERSION="${MOTO_VERSION:-5.2.6}"
TOOLS="${LANTERN_TOOLS:-$HOME/.cache/lantern-tools}"
ROOT="$TOOLS/moto-$MOTO_VERSION"
BIN="$ROOT/bin/moto_server"

install() {
  if [ -x "$BIN" ] && [ -f "$ROOT/.installed" ]; then
    echo "$BIN"
    return
  fi
  # Everything but the final path goes to stderr: callers capture stdout as the path.
  {
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      echo "moto: installing python3 and python3-venv" >&2
      bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" python3 python3-venv
    fi
    echo "moto: installing moto[server] $MOTO_VERSION into $ROOT" >&2
    # A venv's scripts name their interpreter by absolute path, so it is built where it lives;
    # an interrupted install (no `.installed` mark) is removed and made again.
    rm -rf "$ROOT"
    python3 -m venv "$ROOT"
    "$ROOT/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    touch "$ROOT/.installed"
  } >&2
  if [ ! -x "$BIN" ]; then
    echo "moto: the install finished but $BIN is missing" >&2
    exit 1
  fi
  echo "$BIN"
}

case "${1:-}" in
  install) install ;;
  bin) echo "$BIN" ;;
  *) echo "usage: scripts/moto.sh install|bin" >&2; exit 2 ;;
esac
