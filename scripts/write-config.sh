#!/usr/bin/env bash
# Writes a config for the local databases of .run/services.env (from
# scripts/services.sh) to PATH (default .run/config.ini), creating the
# database profiteer if missing. Run again after every services.sh: the
# private services may have moved (a reboot), and a config written once
# would name dead ports. The TOTP key is kept in .run/mfa.key: a new key
# would make every enrolled second factor unreadable.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.run/config.ini}
set -a
# shellcheck disable=SC1091
. .run/services.env
set +a
psql "$PROFITEER_PG_BASE/postgres" -qtc "SELECT 1 FROM pg_database WHERE datname = 'profiteer'" | grep -q 1 \
  || psql "$PROFITEER_PG_BASE/postgres" -qc "CREATE DATABASE profiteer"
if [ ! -s .run/mfa.key ]; then
  (umask 077; head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n' >.run/mfa.key)
fi
mfa_key=$(cat .run/mfa.key)
mongo="$PROFITEER_MONGO_BASE/${PROFITEER_MONGO_DB:-profiteer}${PROFITEER_MONGO_QUERY:-}"
(umask 077; sed -e "s#^PG_URI = .*#PG_URI = $PROFITEER_PG_BASE/profiteer#" \
    -e "s#^; MFA_KEY = .*#MFA_KEY = $mfa_key#" \
    -e "s#^MONGO_MAIN_URI = .*#MONGO_MAIN_URI = ${mongo//&/\\&}#" \
    -e "s#^REDIS_URI = .*#REDIS_URI = $PROFITEER_REDIS_BASE/0#" \
    config.ini.example >"$out.new")
mv "$out.new" "$out"
echo "write-config: wrote $out (local databases)" >&2
