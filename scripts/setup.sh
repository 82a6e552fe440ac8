#!/usr/bin/env bash
# Installs what building Lantern needs and a fresh machine may lack. Idempotent: it checks first
# and installs only what is missing, so CI pays nothing on a machine that has everything.
#
# The bundled librdkafka (rdkafka-sys) is built from source with: a C/C++ compiler, make,
# pkg-config, zlib (libz feature) and OpenSSL (ssl feature, for SSL and SASL PLAIN/SCRAM).
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v perl >/dev/null 2>&1 || need+=(perl)
for pkg in zlib1g-dev libssl-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" "${need[@]}"
fi

command -v cargo >/dev/null 2>&1 || {
  echo "setup: cargo is not installed; install Rust 1.94 or newer (rustup) and run again" >&2
  exit 1
}
