#!/usr/bin/env bash
# Installs, once per machine, the Standard Webhooks libraries the webhook
# receivers of wiki/clients.md use (tests/api/docs.rs runs them): a Python
# virtualenv with `standardwebhooks` and an npm directory with the package
# of the same name. Kept under ~/.cache/profiteer (or $PROFITEER_CACHE),
# outside the repository. Prints the virtualenv's python, then the
# node_modules path.
set -euo pipefail
CACHE=${PROFITEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/profiteer}
VERSION=1.3.0
VENV="$CACHE/standardwebhooks-$VERSION"
NPM="$CACHE/standardwebhooks-npm-$VERSION"
mkdir -p "$CACHE"
exec 9>"$CACHE/standardwebhooks.lock"
flock 9
if ! "$VENV/bin/python" -c 'import standardwebhooks' 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "standardwebhooks==$VERSION" >&2
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "webhook-receivers: installing nodejs and npm" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d "$NPM/node_modules/standardwebhooks" ]; then
  mkdir -p "$NPM"
  [ -f "$NPM/package.json" ] || echo '{"name":"profiteer-webhook-receivers","private":true}' >"$NPM/package.json"
  (cd "$NPM" && npm install --no-audit --no-fund --silent "standardwebhooks@$VERSION" >&2)
fi
echo "$VENV/bin/python"
echo "$NPM/node_modules"
