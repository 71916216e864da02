#!/usr/bin/env bash
# Installs (once per machine, cached under ~/.cache/profiteer) and starts the
# MongoDB-wire-compatible server profiteer uses where no real mongod exists.
# SecantusDB is GPL-2.0, so it only ever runs as a separate process.
#   scripts/mongo.sh install          build + cache the binary if missing
#   scripts/mongo.sh start PORT DIR   start it on 127.0.0.1:PORT with data in DIR
#   scripts/mongo.sh stop DIR         stop the server started with that DIR
set -euo pipefail

SECANTUS_VERSION="0.5.3-beta.196"
CACHE_DIR="${PROFITEER_CACHE_DIR:-$HOME/.cache/profiteer}/secantus-$SECANTUS_VERSION"
BIN="$CACHE_DIR/bin/secantusd-rs"

install() {
  [ -x "$BIN" ] && return 0
  if ! command -v cmake >/dev/null 2>&1; then
    echo "mongo.sh: installing cmake (needed to build WiredTiger)" >&2
    apt-get update -qq && apt-get install -y -qq cmake >/dev/null
  fi
  echo "mongo.sh: building secantus-mdb $SECANTUS_VERSION once (3-5 min)" >&2
  mkdir -p "$CACHE_DIR"
  # --ignore-rust-version: the crate declares a newer rustc than it needs.
  cargo install secantus-mdb --version "$SECANTUS_VERSION" --locked \
    --ignore-rust-version --root "$CACHE_DIR" >&2
}

wait_port() {
  local port=$1 i
  for i in $(seq 1 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "mongo.sh: nothing answered on 127.0.0.1:$port after 15 s" >&2
  return 1
}

start() {
  local port=$1 dir=$2
  install
  mkdir -p "$dir"
  # After a reboot the pid file may name an unrelated process: only a live
  # secantusd that answers on the port counts as running.
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null \
      && grep -q secantusd "/proc/$(cat "$dir/pid")/cmdline" 2>/dev/null; then
    wait_port "$port"; return 0
  fi
  "$BIN" --host 127.0.0.1 --port "$port" --storage-path "$dir/data" \
    --log-file-max 16MB >"$dir/server.log" 2>&1 &
  echo $! >"$dir/pid"
  wait_port "$port"
}

stop() {
  local dir=$1
  [ -f "$dir/pid" ] || return 0
  local pid; pid=$(cat "$dir/pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/pid"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?port}" "${3:?data dir}" ;;
  stop) stop "${2:?data dir}" ;;
  *) echo "usage: $0 install | start PORT DIR | stop DIR" >&2; exit 2 ;;
esac
