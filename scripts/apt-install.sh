#!/usr/bin/env bash
# Installs Debian packages, quietly and without their recommends (with recommends some fail
# here), as root or through sudo. All output goes to stderr, so that scripts whose stdout is a
# path (tansu.sh, moto.sh) can call it.
#
#   bash scripts/apt-install.sh PACKAGE...
set -euo pipefail
[ $# -gt 0 ] || exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
{
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
} >&2
