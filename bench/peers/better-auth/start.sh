#!/usr/bin/env bash
# Start the better-auth peer for bench/run.
#
#   bench/peers/better-auth/start.sh PG_BASE WORKDIR
#
# PG_BASE is a PostgreSQL URL without a database (postgres://postgres@127.0.0.1:5432).
# Installs the npm dependencies if missing, recreates the database
# profiteer_bench_peer, starts server.mjs in the background and prints, for
# bench/run to source:
#   PEER_PID=<pid>
#   PEER_PORT=18090
#   PEER_COOKIE_FILE=<path>
# The node process keeps running; the caller kills PEER_PID.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 PG_BASE WORKDIR" >&2
  exit 2
fi
PG_BASE=${1%/}
mkdir -p "$2"
WORKDIR=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
DB=profiteer_bench_peer
PORT=18090
COOKIE_FILE="$WORKDIR/cookie.txt"
SETUP_LOG="$WORKDIR/setup.log"
SERVER_LOG="$WORKDIR/server.log"
: >"$SETUP_LOG"

fail() {
  echo "better-auth peer: $*" >&2
  exit 1
}

command -v node >/dev/null || fail "node is not installed"
command -v npm >/dev/null || fail "npm is not installed"
command -v psql >/dev/null || fail "psql is not installed"

if [ ! -d "$HERE/node_modules" ]; then
  echo "npm ci in $HERE" >>"$SETUP_LOG"
  (cd "$HERE" && npm ci --no-audit --no-fund) >>"$SETUP_LOG" 2>&1 \
    || fail "npm ci failed; see $SETUP_LOG"
fi

psql -q -v ON_ERROR_STOP=1 "$PG_BASE/postgres" \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >>"$SETUP_LOG" 2>&1 \
  || fail "could not recreate database $DB on $PG_BASE; see $SETUP_LOG"

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  fail "port $PORT is already in use"
fi

rm -f "$COOKIE_FILE"
: >"$SERVER_LOG"
cd "$HERE"
DATABASE_URL="$PG_BASE/$DB" PORT=$PORT COOKIE_FILE="$COOKIE_FILE" \
  setsid nohup node server.mjs >"$SERVER_LOG" 2>&1 </dev/null &
PID=$!

for _ in $(seq 1 600); do
  if grep -q "^peer listening on $PORT" "$SERVER_LOG"; then
    [ -s "$COOKIE_FILE" ] || { kill "$PID" 2>/dev/null || true; fail "no session cookie in $COOKIE_FILE"; }
    echo "PEER_PID=$PID"
    echo "PEER_PORT=$PORT"
    echo "PEER_COOKIE_FILE=$COOKIE_FILE"
    exit 0
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    tail -n 20 "$SERVER_LOG" >&2
    fail "server.mjs exited during start; see $SERVER_LOG"
  fi
  sleep 0.1
done
kill "$PID" 2>/dev/null || true
tail -n 20 "$SERVER_LOG" >&2
fail "server.mjs did not listen within 60 s; see $SERVER_LOG"
