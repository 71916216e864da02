#!/usr/bin/env bash
# scripts/cluster.sh end to end: start the whole layout, register and log in
# through HAProxy, see the account on the primary and on the standby, stop,
# check nothing it started still listens, and remove its data. Called by
# scripts/test.sh.
# Uses its own ports (PROFITEER_CLUSTER_BASE, default 18000 here) so a
# cluster you run by hand on the default ports is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROFITEER_CLUSTER_BASE=${PROFITEER_CLUSTER_BASE:-18000}
base=$PROFITEER_CLUSTER_BASE
# The instances take any key from the environment: a cheap bcrypt for a
# debug build on a busy machine (cost 12 takes seconds there), no drain.
export PROFITEER_AUTH__BCRYPT_COST=4 PROFITEER_SERVER__DRAIN_S=0
lb=$((base + 80))
fail() { echo "test-cluster: FAIL: $*" >&2; exit 1; }
# Whatever happens, nothing is left running or on disk.
trap 'scripts/cluster.sh clean >/dev/null 2>&1 || true' EXIT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# One JSON-RPC call through the balancer: the answer's body.
rpc() {
  local body=$1
  exec 3<>"/dev/tcp/127.0.0.1/$lb"
  printf 'POST /rpc HTTP/1.1\r\nHost: cluster\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
    "${#body}" "$body" >&3
  sed -e '1,/^\r$/d' <&3
  exec 3<&-
}

scripts/cluster.sh start
scripts/cluster.sh status
user="tc_$(date +%s)_$$"
pw="correct horse battery staple 42"
reg=$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"auth.register\",\"params\":{\"username\":\"$user\",\"password\":\"$pw\"}}")
echo "$reg" | grep -q '"user_id"' || fail "register through HAProxy: $reg"
login=$(rpc "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"auth.login\",\"params\":{\"username\":\"$user\",\"password\":\"$pw\"}}")
echo "$login" | grep -q '"access_token"' || fail "login through HAProxy: $login"
q="SELECT count(*) FROM users WHERE username = '$user'"
[ "$(psql -w -h 127.0.0.1 -p $((base + 432)) -U postgres -d profiteer -qtAc "$q")" = 1 ] \
  || fail "the account is not on the primary"
# The standby replays it (streaming replication), within a generous bound.
for _ in $(seq 1 100); do
  [ "$(psql -w -h 127.0.0.1 -p $((base + 433)) -U postgres -d profiteer -qtAc "$q")" = 1 ] && break
  sleep 0.1
done
[ "$(psql -w -h 127.0.0.1 -p $((base + 433)) -U postgres -d profiteer -qtAc "$q")" = 1 ] \
  || fail "the account never reached the standby"
scripts/cluster.sh stop
for p in $lb $((base + 81)) $((base + 82)) $((base + 432)) $((base + 433)) \
    $((base + 1)) $((base + 2)) $((base + 3)) $((base + 17)); do
  port_open "$p" && fail "port $p still open after stop"
done
echo "test-cluster: ok" >&2
