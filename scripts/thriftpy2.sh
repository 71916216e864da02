#!/usr/bin/env bash
# Makes a Python virtualenv with thriftpy2 (the Python service's own Thrift
# library, from PyPI) and prints its python's path. The Thrift tests and
# bench/run drive profiteer's [THRIFT] port with it, as old callers would.
# Kept under ~/.cache/profiteer (or $PROFITEER_CACHE) and reused; safe to
# run again and from several processes at once.
set -euo pipefail
CACHE=${PROFITEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/profiteer}
VERSION=0.7.1
VENV="$CACHE/thriftpy2-$VERSION"
PY="$VENV/bin/python"
mkdir -p "$CACHE"
exec 9>"$CACHE/thriftpy2.lock"
flock 9
if ! "$PY" -c 'import thriftpy2' 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$PY" -m pip install -q --disable-pip-version-check "thriftpy2==$VERSION" >&2
fi
echo "$PY"
