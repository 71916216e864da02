#!/usr/bin/env bash
# Sets everything up and runs profiteer on 127.0.0.1:8080 (or -P/-H given
# here), with PROFITEER_CONFIG_PATH if set, else a config for local
# databases written to .run/config.ini on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
# shellcheck disable=SC1091
. .run/services.env
if [ -z "${PROFITEER_CONFIG_PATH:-}" ]; then
  export PROFITEER_CONFIG_PATH="$PWD/.run/config.ini"
  if [ ! -f "$PROFITEER_CONFIG_PATH" ]; then
    psql "$PROFITEER_PG_BASE/postgres" -qtc "SELECT 1 FROM pg_database WHERE datname = 'profiteer'" | grep -q 1 \
      || psql "$PROFITEER_PG_BASE/postgres" -qc "CREATE DATABASE profiteer"
    # A TOTP key of this checkout's own, kept with the config it is written to.
    mfa_key=$(head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    sed -e "s#^PG_URI = .*#PG_URI = $PROFITEER_PG_BASE/profiteer#" \
        -e "s#^; MFA_KEY = .*#MFA_KEY = $mfa_key#" \
        -e "s#^MONGO_MAIN_URI = .*#MONGO_MAIN_URI = $PROFITEER_MONGO_BASE/profiteer#" \
        -e "s#^REDIS_URI = .*#REDIS_URI = $PROFITEER_REDIS_BASE/0#" \
        config.ini.example >"$PROFITEER_CONFIG_PATH"
    chmod 600 "$PROFITEER_CONFIG_PATH"
    echo "run: wrote $PROFITEER_CONFIG_PATH (local databases)" >&2
  fi
fi
cargo build --release
exec target/release/profiteer -H 127.0.0.1 -P 8080 "$@"
