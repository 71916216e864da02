#!/usr/bin/env bash
# The whole scale-out layout of wiki/deploy.md on this one machine, private
# under .run/cluster/ (PostgreSQL's data under /var/tmp, linked from there):
#
#   port  what
#   17080 HAProxy (deploy/haproxy.cfg as it is) -> the two instances below
#   17081 profiteer instance 1     17082 profiteer instance 2
#   17432 PostgreSQL primary       17433 PostgreSQL streaming standby
#                                        (pg_basebackup -R of the primary)
#   17001 17002 17003  Redis Cluster, three masters, no replicas
#   17017 the MongoDB-compatible server (scripts/mongo.sh)
#
# PROFITEER_CLUSTER_BASE (default 17000) moves every port by the same
# amount (17080 is BASE+80, and so on); another base is another cluster,
# under .run/cluster-BASE/. Keep them below 32768: above, in Linux's
# ephemeral range, any outgoing connection may hold a port for a while.
#
#   scripts/cluster.sh [start]   start what is not running (safe to repeat)
#   scripts/cluster.sh stop      stop everything it started (data is kept)
#   scripts/cluster.sh status    what runs, where
#   scripts/cluster.sh failover  stop the primary (fast), promote the standby
#   scripts/cluster.sh clean     stop, then remove all its data
#
# The instances' config is .run/cluster/config.ini: PG_URI names both
# PostgreSQL hosts with target_session_attrs=read-write (a promoted standby
# takes the writes), PG_READ_URI the standby (when this build knows the key),
# REDIS_URI the three masters. The binary is $PROFITEER_BIN, else
# target/release/profiteer, else target/debug/profiteer (built if missing).
# Needs root (PostgreSQL runs as user postgres; Debian packages installed if
# missing: postgresql, redis-server, haproxy).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASE=${PROFITEER_CLUSTER_BASE:-17000}
# Another base is another cluster, with its own data.
RUN="$ROOT/.run/cluster"
[ "$BASE" = 17000 ] || RUN="$ROOT/.run/cluster-$BASE"
LB_PORT=$((BASE + 80))
APP_PORTS=($((BASE + 81)) $((BASE + 82)))
PG_PRIMARY=$((BASE + 432))
PG_STANDBY=$((BASE + 433))
REDIS_PORTS=($((BASE + 1)) $((BASE + 2)) $((BASE + 3)))
MONGO_PORT=$((BASE + 17))
# Outside the checkout: the postgres user cannot enter one under /root.
PG_HOME="/var/tmp/profiteer-cluster-$(printf '%s:%s' "$ROOT" "$BASE" | sha256sum | cut -c1-12)"

say() { echo "cluster: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 300); do port_open "$1" && return 0; sleep 0.1; done
  say "nothing answers on 127.0.0.1:$1"; return 1
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
apt_install() {
  say "installing $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
pg_bin() { find /usr/lib/postgresql -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -1; }
as_postgres() { su postgres -c "$1"; }

# An HTTP GET on 127.0.0.1:$1 path $2: the status code (no curl needed).
http_status() {
  local reply
  reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" \
    && printf 'GET %s HTTP/1.1\r\nHost: cluster\r\nConnection: close\r\n\r\n' "$2" >&3 \
    && head -1 <&3) 2>/dev/null) || return 1
  echo "$reply" | cut -d' ' -f2
}

start_pg() {
  [ -n "$(pg_bin)" ] || apt_install postgresql
  local bin; bin=$(pg_bin)
  mkdir -p "$RUN" && install -d -o postgres -m 755 "$PG_HOME"
  ln -sfn "$PG_HOME" "$RUN/pg"
  if [ ! -f "$PG_HOME/primary/PG_VERSION" ]; then
    say "creating the PostgreSQL primary in $PG_HOME/primary"
    install -d -o postgres -m 700 "$PG_HOME/primary"
    as_postgres "$bin/initdb -D '$PG_HOME/primary' -A trust -U postgres" >/dev/null
  fi
  # After `failover` the standby is the primary: starting the old one too
  # would make two (and the first host of PG_URI would take the writes).
  if [ -f "$PG_HOME/standby/PG_VERSION" ] && [ ! -f "$PG_HOME/standby/standby.signal" ]; then
    say "the standby was promoted: the old primary stays down (clean to start afresh)"
  elif ! port_open "$PG_PRIMARY"; then
    as_postgres "$bin/pg_ctl -D '$PG_HOME/primary' -l '$PG_HOME/primary.log' -w \
      -o '-p $PG_PRIMARY -k /tmp -c listen_addresses=127.0.0.1' start" >/dev/null \
      || { tail -5 "$PG_HOME/primary.log" >&2; exit 1; }
  fi
  if [ ! -f "$PG_HOME/standby/PG_VERSION" ]; then
    say "cloning the standby from the primary (pg_basebackup -R)"
    install -d -o postgres -m 700 "$PG_HOME/standby"
    as_postgres "$bin/pg_basebackup -h 127.0.0.1 -p $PG_PRIMARY -U postgres \
      -D '$PG_HOME/standby' -R -X stream" >/dev/null
  fi
  if ! port_open "$PG_STANDBY"; then
    as_postgres "$bin/pg_ctl -D '$PG_HOME/standby' -l '$PG_HOME/standby.log' -w \
      -o '-p $PG_STANDBY -k /tmp -c listen_addresses=127.0.0.1' start" >/dev/null \
      || { tail -5 "$PG_HOME/standby.log" >&2; exit 1; }
  fi
  local writable=$PG_PRIMARY
  [ -f "$PG_HOME/standby/standby.signal" ] || writable=$PG_STANDBY
  local sql="psql -w -h 127.0.0.1 -p $writable -U postgres -d postgres -qtAc"
  $sql "SELECT 1 FROM pg_database WHERE datname = 'profiteer'" | grep -q 1 \
    || $sql "CREATE DATABASE profiteer" >/dev/null
}

start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p "$RUN/redis"
  local p
  for p in "${REDIS_PORTS[@]}"; do
    port_open "$p" && continue
    redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --dir "$RUN/redis" \
      --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
      --cluster-node-timeout 5000 --save "" --appendonly no \
      --logfile "$RUN/redis/$p.log" --pidfile "$RUN/redis/$p.pid"
    wait_port "$p"
  done
  # Created once: the nodes files keep who holds which slots across restarts.
  if redis-cli -p "${REDIS_PORTS[0]}" cluster info | grep -q '^cluster_known_nodes:1'; then
    say "creating the Redis Cluster"
    redis-cli --cluster create "${REDIS_PORTS[@]/#/127.0.0.1:}" \
      --cluster-replicas 0 --cluster-yes >/dev/null
  fi
  for _ in $(seq 1 300); do
    redis-cli -p "${REDIS_PORTS[0]}" cluster info | grep -q '^cluster_state:ok' && return 0
    sleep 0.1
  done
  say "the Redis Cluster is not ok"; return 1
}

binary() {
  if [ -n "${PROFITEER_BIN:-}" ]; then echo "$PROFITEER_BIN"; return; fi
  if [ -x target/release/profiteer ]; then echo "$ROOT/target/release/profiteer"; return; fi
  [ -x target/debug/profiteer ] || cargo build -q >&2
  echo "$ROOT/target/debug/profiteer"
}

write_config() {
  local bin=$1 out="$RUN/config.ini"
  if [ ! -s "$RUN/mfa.key" ]; then
    (umask 077; head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/mfa.key")
  fi
  local redis="" p
  for p in "${REDIS_PORTS[@]}"; do redis="${redis:+$redis,}redis://127.0.0.1:$p"; done
  (umask 077; cat >"$out.new" <<EOF
; Written by scripts/cluster.sh: the instances of the private cluster.
[ENV]
CURRENT_ENV = Local
[SERVER]
DRAIN_S = 5
[PG]
PG_URI = postgresql://postgres@127.0.0.1:$PG_PRIMARY,127.0.0.1:$PG_STANDBY/profiteer?target_session_attrs=read-write
PG_POOL_SIZE = 8
[MONGO]
MONGO_MAIN_URI = mongodb://127.0.0.1:$MONGO_PORT/profiteer
[REDIS]
REDIS_URI = $redis
[AUTH]
MFA_KEY = $(cat "$RUN/mfa.key")
EOF
  )
  # Replica reads, where this build knows the key (check-config refuses
  # keys it does not know).
  local with_read="$out.read"
  (umask 077; sed "s#^PG_POOL_SIZE = 8#&\nPG_READ_URI = postgresql://postgres@127.0.0.1:$PG_STANDBY/profiteer#" \
    "$out.new" >"$with_read")
  if "$bin" check-config -c "$with_read" >/dev/null 2>&1; then
    mv "$with_read" "$out.new"
  else
    rm -f "$with_read"
    say "this build has no [PG] PG_READ_URI: the standby takes no reads"
  fi
  mv "$out.new" "$out"
}

start_instances() {
  local bin; bin=$(binary)
  write_config "$bin"
  local i port
  for i in 0 1; do
    port=${APP_PORTS[$i]}
    if alive "$RUN/app$((i + 1)).pid"; then continue; fi
    "$bin" -H 127.0.0.1 -P "$port" -c "$RUN/config.ini" >"$RUN/app$((i + 1)).log" 2>&1 &
    echo $! >"$RUN/app$((i + 1)).pid"
    # One at a time: the first applies the migrations.
    for _ in $(seq 1 600); do
      [ "$(http_status "$port" /readyz || true)" = 200 ] && break
      alive "$RUN/app$((i + 1)).pid" || { tail -5 "$RUN/app$((i + 1)).log" >&2; exit 1; }
      sleep 0.1
    done
    [ "$(http_status "$port" /readyz || true)" = 200 ] \
      || { say "instance $((i + 1)) is not ready"; tail -5 "$RUN/app$((i + 1)).log" >&2; exit 1; }
  done
}

start_haproxy() {
  local bin; bin=$(scripts/haproxy.sh)
  alive "$RUN/haproxy.pid" && return 0
  PROFITEER_LB="127.0.0.1:$LB_PORT" \
    PROFITEER_APP1="127.0.0.1:${APP_PORTS[0]}" PROFITEER_APP2="127.0.0.1:${APP_PORTS[1]}" \
    "$bin" -D -p "$RUN/haproxy.pid" -f deploy/haproxy.cfg
  wait_port "$LB_PORT"
}

start() {
  mkdir -p "$RUN"
  start_pg
  start_redis
  scripts/mongo.sh start "$MONGO_PORT" "$RUN/mongo"
  start_instances
  start_haproxy
  say "up: HAProxy on 127.0.0.1:$LB_PORT (POST /rpc), config $RUN/config.ini"
}

stop_pid() {
  local file=$1
  if alive "$file"; then
    local pid; pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop() {
  stop_pid "$RUN/haproxy.pid"
  # Both drain at once (DRAIN_S), rather than one after the other.
  stop_pid "$RUN/app1.pid" & stop_pid "$RUN/app2.pid" & wait
  scripts/mongo.sh stop "$RUN/mongo"
  local p
  for p in "${REDIS_PORTS[@]}"; do
    if port_open "$p"; then redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; fi
  done
  local bin; bin=$(pg_bin)
  for node in standby primary; do
    if [ -n "$bin" ] && [ -f "$PG_HOME/$node/postmaster.pid" ]; then
      as_postgres "$bin/pg_ctl -D '$PG_HOME/$node' -m fast -w stop" >/dev/null || true
    fi
  done
  say "stopped"
}

status() {
  local line
  show() { printf '%-22s %-6s %s\n' "$1" "$2" "$3"; }
  state() { port_open "$1" && echo up || echo down; }
  show "haproxy" "$LB_PORT" "$(state "$LB_PORT")"
  for i in 0 1; do
    line=$(state "${APP_PORTS[$i]}")
    [ "$line" = up ] && line="up, /readyz $(http_status "${APP_PORTS[$i]}" /readyz || echo '?')"
    show "profiteer $((i + 1))" "${APP_PORTS[$i]}" "$line"
  done
  line=$(state "$PG_PRIMARY")
  [ "$line" = up ] && line="up, in recovery: $(psql -w -h 127.0.0.1 -p "$PG_PRIMARY" -U postgres -d postgres -qtAc 'SELECT pg_is_in_recovery()' 2>/dev/null || echo '?')"
  show "postgresql primary" "$PG_PRIMARY" "$line"
  line=$(state "$PG_STANDBY")
  [ "$line" = up ] && line="up, in recovery: $(psql -w -h 127.0.0.1 -p "$PG_STANDBY" -U postgres -d postgres -qtAc 'SELECT pg_is_in_recovery()' 2>/dev/null || echo '?')"
  show "postgresql standby" "$PG_STANDBY" "$line"
  for p in "${REDIS_PORTS[@]}"; do
    line=$(state "$p")
    [ "$line" = up ] && line="up, $(redis-cli -p "$p" cluster info 2>/dev/null | tr -d '\r' | grep '^cluster_state:' || echo '?')"
    show "redis cluster master" "$p" "$line"
  done
  show "mongodb-compatible" "$MONGO_PORT" "$(state "$MONGO_PORT")"
  echo "(PostgreSQL data: $PG_HOME; config: $RUN/config.ini)"
}

failover() {
  local bin; bin=$(pg_bin)
  say "stopping the primary ($PG_PRIMARY), promoting the standby ($PG_STANDBY)"
  as_postgres "$bin/pg_ctl -D '$PG_HOME/primary' -m fast -w stop" >/dev/null
  as_postgres "$bin/pg_ctl -D '$PG_HOME/standby' -w promote" >/dev/null
  say "the old primary stays stopped: to use it again as a standby, clean and start afresh"
}

clean() {
  stop
  rm -rf "$RUN" "$PG_HOME"
  say "removed $RUN and $PG_HOME"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  failover) failover ;;
  clean) clean ;;
  *) echo "usage: $0 [start | stop | status | failover | clean]" >&2; exit 2 ;;
esac
