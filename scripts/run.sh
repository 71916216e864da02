#!/usr/bin/env bash
# Sets everything up and runs profiteer on 127.0.0.1:8080 (or -P/-H given
# here), with PROFITEER_CONFIG_PATH if set, else .run/config.ini, written
# afresh on every run from the addresses scripts/services.sh found (after a
# reboot the private services may sit elsewhere; a stale config would name
# dead ports): see scripts/write-config.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
if [ -z "${PROFITEER_CONFIG_PATH:-}" ]; then
  export PROFITEER_CONFIG_PATH="$PWD/.run/config.ini"
  scripts/write-config.sh "$PROFITEER_CONFIG_PATH"
fi
# cargo run replaces itself with the server (exec), so signals reach it.
exec cargo run --release --quiet -- -H 127.0.0.1 -P 8080 "$@"
