#!/usr/bin/env bash
# Proves what it can on one machine of the README's promise that the setup
# works on a stock Debian 12, from a checkout under /root, and after a reboot:
#   1. a copy of the repository under /root (mode 0700, which the postgres
#      user cannot enter), with PROFITEER_PRIVATE_SERVICES=1 (what a machine
#      whose PostgreSQL asks for a password gets): services.sh creates a
#      private cluster outside the checkout, a private Redis, and takes
#      PROFITEER_MONGO_URI apart (a database path and a query) instead of
#      appending to it; write-config.sh writes a config the binary serves with;
#   2. a "reboot": the private services are stopped and the config is made
#      stale; services.sh starts them again, write-config.sh rewrites the
#      config, and the binary serves again with the same data.
# Needs root, a built binary (PROFITEER_BIN or `cargo build`'s), and the
# running MongoDB-compatible server of .run/services.env.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-setup: run as root" >&2; exit 2; }
SRC=$(pwd)
BIN=${PROFITEER_BIN:-$(cargo build --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*profiteer\)".*/\1/p' | tail -1)}
[ -x "$BIN" ] || { echo "test-setup: no profiteer binary" >&2; exit 2; }
if [ -f .run/services.env ]; then set -a; . .run/services.env; set +a; fi
MONGO=${PROFITEER_MONGO_BASE:-mongodb://127.0.0.1:27117}

copy=$(mktemp -d /root/profiteer-setup.XXXXXX)
chmod 700 /root "$copy"
git ls-files -z | xargs -0 tar -cf - | tar -xf - -C "$copy"
cd "$copy"
pgdata="/var/tmp/profiteer-$(printf '%s' "$copy" | sha256sum | cut -c1-12)"
# Ports of their own: the checkout CI runs from may have private services too.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export PROFITEER_PRIVATE_PG_PORT=$(free_port) PROFITEER_PRIVATE_REDIS_PORT=$(free_port)
PGP=$PROFITEER_PRIVATE_PG_PORT
RP=$PROFITEER_PRIVATE_REDIS_PORT
pid=""
failures=0
check() {
  local what=$1; shift
  if "$@" >.run-check.log 2>&1; then echo "ok   $what"
  else echo "FAIL $what"; sed 's/^/     /' .run-check.log | tail -5; failures=$((failures + 1)); fi
}
stop_private() {
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  [ -f "$pgdata/pg/postmaster.pid" ] && su postgres -c "$bin/pg_ctl -D '$pgdata/pg' -m fast stop" >/dev/null 2>&1 || true
  [ -f .run/redis/pid ] && kill "$(cat .run/redis/pid)" 2>/dev/null || true
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PGP") 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$RP") 2>/dev/null || break
    sleep 0.1
  done
}
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  stop_private
  rm -rf "$copy" "$pgdata"
}
trap cleanup EXIT

serve() { # starts the binary on .run/config.ini, registers or logs in $1
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # Cost 4: a debug build takes seconds at cost 12, past the deadline.
  PROFITEER_AUTH__BCRYPT_COST=4 "$BIN" -P "$port" -c .run/config.ini >.run/serve.log 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs "127.0.0.1:$port/rpc" -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":{\"username\":\"setup\",\"password\":\"correct horse battery staple\"}}" >.run/answer.json || true
  kill "$pid"; wait "$pid" || true; pid=""
}

echo "== 1. a fresh checkout under /root, private services"
export PROFITEER_PRIVATE_SERVICES=1
export PROFITEER_MONGO_URI="$MONGO/profiteer_setup?appName=profiteer-setup&connectTimeoutMS=5000"
check "services.sh" scripts/services.sh
check "the cluster lives outside the checkout" test -f "$pgdata/pg/PG_VERSION"
check "services.env names the private PostgreSQL" grep -q "^PROFITEER_PG_BASE=postgres://postgres@127.0.0.1:$PGP\$" .run/services.env
check "services.env names the private Redis" grep -q "^PROFITEER_REDIS_BASE=redis://127.0.0.1:$RP\$" .run/services.env
check "write-config.sh" scripts/write-config.sh
check "the Mongo URI keeps its database and query" grep -qF "MONGO_MAIN_URI = $MONGO/profiteer_setup?appName=profiteer-setup&connectTimeoutMS=5000" .run/config.ini
check "check-config accepts it" "$BIN" check-config -c .run/config.ini
serve auth.register
check "the service serves (register)" grep -q user_id .run/answer.json

echo "== 2. after a reboot: services down, config stale"
stop_private
check "the private services are down" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$PGP) 2>/dev/null"
sed -i 's#^PG_URI = .*#PG_URI = postgres://postgres@127.0.0.1:1/profiteer#' .run/config.ini
check "services.sh starts them again" scripts/services.sh
check "write-config.sh rewrites the config" scripts/write-config.sh
check "the config names the live cluster" grep -q "^PG_URI = postgres://postgres@127.0.0.1:$PGP/profiteer\$" .run/config.ini
serve auth.login
check "the service serves the same data (login)" grep -q access_token .run/answer.json

if [ "$failures" -gt 0 ]; then
  echo "test-setup: $failures checks failed"; tail -20 .run/serve.log 2>/dev/null || true; exit 1
fi
echo "test-setup: all checks passed"
