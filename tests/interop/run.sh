#!/usr/bin/env bash
# The aiortc interop test: aiortc publishes over WHIP and two aiortc viewers decode the stream
# over WHEP through the real townhall binary ($TOWNHALL_BIN, else target/debug/townhall; this
# script builds nothing). Keeps a Python venv in target/interop-venv and reinstalls its packages
# only when requirements.txt changes. Quiet on success (one summary line); exit code = result.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/interop-venv
req=tests/interop/requirements.txt
stamp=$venv/.requirements.sha256

bin=${TOWNHALL_BIN:-$PWD/target/debug/townhall}
if [ ! -x "$bin" ]; then
  echo "interop: no townhall binary at $bin (run: cargo build --bin townhall)" >&2
  exit 1
fi

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian ships venv (ensurepip) separately.
    echo "interop: installing python3-venv (apt)"
    rm -rf "$venv"
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
fi

want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "interop: installing $req into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi

TOWNHALL_BIN="$bin" exec "$venv/bin/python" tests/interop/aiortc_whip_whep.py
