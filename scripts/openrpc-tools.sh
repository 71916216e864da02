#!/usr/bin/env bash
# Installs, once per machine, the npm packages the OpenRPC test uses
# (tests/openrpc/check.js): the OpenRPC project's own document parser and
# validator, a JSON-schema faker and ajv. They go to a cache directory
# outside the repository; prints that directory's node_modules path.
set -euo pipefail
DIR="${PROFITEER_CACHE_DIR:-$HOME/.cache/profiteer}/openrpc-tools"
PACKAGES=(@open-rpc/schema-utils-js@2.2.1 json-schema-faker@0.5.9 ajv@8.20.0 ajv-formats@3.0.1)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "openrpc-tools: installing nodejs and npm" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir -p "$DIR"
stamp="$DIR/.installed-$(printf '%s ' "${PACKAGES[@]}" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "openrpc-tools: npm install ${PACKAGES[*]} into $DIR" >&2
  [ -f "$DIR/package.json" ] || echo '{"name":"profiteer-openrpc-tools","private":true}' >"$DIR/package.json"
  (cd "$DIR" && npm install --no-audit --no-fund --silent "${PACKAGES[@]}" >&2)
  touch "$stamp"
fi
echo "$DIR/node_modules"
