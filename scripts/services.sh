#!/usr/bin/env bash
# Brings up what profiteer needs on this machine and writes their addresses
# to .run/services.env:
#   PostgreSQL  the one on 127.0.0.1:5432 if it lets user postgres in over
#               TCP without a password (started if its cluster is installed),
#               else a private cluster on 55432 (PROFITEER_PRIVATE_PG_PORT)
#               whose data lives under
#               /var/tmp/profiteer-<checkout hash>/pg (the postgres user must
#               enter it: a checkout under /root is mode 0700). Stock Debian's
#               cluster asks for a password (scram) and is left alone.
#   Redis       the one on 127.0.0.1:6379 if it answers, else a private one
#   MongoDB     a real one at $PROFITEER_MONGO_URI if given (its path names
#               the database, its query is kept), else the wire-compatible
#               server of scripts/mongo.sh under .run/mongo
#   (Redis: the private one on 56379, PROFITEER_PRIVATE_REDIS_PORT.)
# Installs missing Debian packages (as root). Safe to run again, and after a
# reboot: whatever is not answering is started again.
# PROFITEER_PRIVATE_SERVICES=1 skips the running PostgreSQL and Redis and
# uses private instances under .run/ (what a fresh machine gets).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="$ROOT/.run"
mkdir -p "$RUN"

say() { echo "services: $*" >&2; }

apt_install() {
  say "installing $*"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
  say "nothing answers on 127.0.0.1:$1"; return 1
}

# --- PostgreSQL -------------------------------------------------------------
PRIVATE=${PROFITEER_PRIVATE_SERVICES:-0}
PG_PORT=${PROFITEER_PRIVATE_PG_PORT:-55432}
REDIS_PORT=${PROFITEER_PRIVATE_REDIS_PORT:-56379}
# Whether user postgres gets in over TCP on port $1 without a password.
pg_trusts() {
  command -v psql >/dev/null \
    && PGCONNECT_TIMEOUT=3 psql -w -h 127.0.0.1 -p "$1" -U postgres -d postgres -qtAc 'SELECT 1' >/dev/null 2>&1
}
pg_uri=""
if [ "$PRIVATE" = 1 ]; then
  :
elif command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_trusts 5432 && pg_uri="postgres://postgres@127.0.0.1:5432"
elif command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql)" ]; then
  say "starting the installed PostgreSQL cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_port 5432 && pg_trusts 5432 && pg_uri="postgres://postgres@127.0.0.1:5432"
fi
[ -z "$pg_uri" ] && [ "$PRIVATE" != 1 ] && port_open 5432 \
  && say "PostgreSQL on 5432 wants a password for user postgres: using a private cluster instead"
if [ -z "$pg_uri" ]; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  # Outside the checkout: initdb and the server run as postgres, which
  # cannot enter a checkout under /root. /var/tmp survives a reboot.
  home="/var/tmp/profiteer-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
  data="$home/pg"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $data"
    mkdir -p "$home" && chmod 755 "$home"
    mkdir -p "$data" && chown postgres "$data" && chmod 700 "$data"
    su postgres -c "$bin/initdb -D '$data' -A trust -U postgres" >/dev/null
  fi
  if ! port_open "$PG_PORT"; then
    su postgres -c "$bin/pg_ctl -D '$data' -l '$data/log' -o '-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1' start" >/dev/null \
      || { tail -5 "$data/log" >&2; exit 1; }
  fi
  wait_port "$PG_PORT"
  pg_uri="postgres://postgres@127.0.0.1:$PG_PORT"
fi

# --- Redis ------------------------------------------------------------------
redis_uri=""
if [ "$PRIVATE" != 1 ] && command -v redis-cli >/dev/null \
    && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then
  redis_uri="redis://127.0.0.1:6379"
else
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p "$RUN/redis"
  if ! port_open "$REDIS_PORT"; then
    say "starting a private Redis under .run/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$RUN/redis" \
      --save "" --appendonly no --logfile "$RUN/redis/log" --pidfile "$RUN/redis/pid"
  fi
  wait_port "$REDIS_PORT"
  redis_uri="redis://127.0.0.1:$REDIS_PORT"
fi

# --- MongoDB ----------------------------------------------------------------
# A given URI is taken apart, never appended to: scheme://[user@]hosts is the
# base, its path the database (default profiteer), its query kept as is
# (e.g. ?replicaSet=rs0&authSource=admin); tests put their own database
# names between the two.
mongo_db=profiteer
mongo_query=""
if [ -n "${PROFITEER_MONGO_URI:-}" ]; then
  scheme=${PROFITEER_MONGO_URI%%://*}
  rest=${PROFITEER_MONGO_URI#*://}
  case "$rest" in *\?*) mongo_query="?${rest#*\?}"; rest=${rest%%\?*} ;; esac
  authority=${rest%%/*}
  case "$rest" in */?*) mongo_db=${rest#*/} ;; esac
  mongo_uri="$scheme://$authority"
else
  MONGO_PORT=${PROFITEER_MONGO_PORT:-27117}
  "$ROOT/scripts/mongo.sh" start "$MONGO_PORT" "$RUN/mongo"
  mongo_uri="mongodb://127.0.0.1:$MONGO_PORT"
fi

{
  printf 'PROFITEER_PG_BASE=%q\n' "$pg_uri"
  printf 'PROFITEER_REDIS_BASE=%q\n' "$redis_uri"
  printf 'PROFITEER_MONGO_BASE=%q\n' "$mongo_uri"
  printf 'PROFITEER_MONGO_DB=%q\n' "$mongo_db"
  printf 'PROFITEER_MONGO_QUERY=%q\n' "$mongo_query"
} >"$RUN/services.env"
shown=$(printf '%s' "$mongo_uri" | sed -E 's#//([^:/@]*):[^@/]*@#//\1:***@#')
say "postgres $pg_uri, redis $redis_uri, mongo $shown/$mongo_db$mongo_query"
