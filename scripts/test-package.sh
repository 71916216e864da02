#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine (as root, with
# dpkg -i), checks what it installed, runs the installed binary as its
# service user against the local test databases, then purges it and checks
# that nothing is left. Used by .ci/run.
#   PROFITEER_DEB=path.deb   test that package instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-package: run as root (dpkg -i)" >&2; exit 2; }
if [ -f .run/services.env ]; then set -a; . .run/services.env; set +a; fi
PG=${PROFITEER_PG_BASE:-postgres://postgres@127.0.0.1:5432}
REDIS=${PROFITEER_REDIS_BASE:-redis://127.0.0.1:6379}
MONGO=${PROFITEER_MONGO_BASE:-mongodb://127.0.0.1:27117}
MQ=${PROFITEER_MONGO_QUERY:-}

failures=0
check() { # check "what" command...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then echo "ok   $what"; else echo "FAIL $what"; failures=$((failures + 1)); fi
}

if dpkg-query -W profiteer >/dev/null 2>&1; then
  echo "test-package: profiteer is installed already; not touching it" >&2; exit 2
fi
deb=${PROFITEER_DEB:-$(scripts/package.sh | tail -1)}
echo "== dpkg -i $deb"
dpkg -i "$deb"

name="profiteer_pkgtest_$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
work=$(mktemp -d /tmp/profiteer-pkgtest.XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
  dpkg --purge profiteer >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== what the package installed"
check "/usr/bin/profiteer is executable" test -x /usr/bin/profiteer
check "the unit file is installed" test -f /lib/systemd/system/profiteer.service
check "config.ini is mode 0640" test "$(stat -c %a /etc/profiteer/config.ini)" = 640
check "config.ini is root:profiteer" test "$(stat -c %U:%G /etc/profiteer/config.ini)" = root:profiteer
check "the service user cannot rewrite its config" runuser -u profiteer -- sh -c '! test -w /etc/profiteer/config.ini'
check "config.ini is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' profiteer | grep -q /etc/profiteer/config.ini"
check "config.ini is config.ini.example" cmp -s /etc/profiteer/config.ini config.ini.example
check "profiteer is a system user" test "$(id -u profiteer)" -lt 1000
check "profiteer has no login shell" test "$(getent passwd profiteer | cut -d: -f7)" = /usr/sbin/nologin
check "others cannot read the config" runuser -u nobody -- sh -c '! cat /etc/profiteer/config.ini'
for directive in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes LimitNOFILE= \
    Restart=on-failure TimeoutStopSec= User=profiteer SystemCallFilter=@system-service \
    ProtectProc=invisible ProcSubset=pid RemoveIPC=yes PrivateUsers=yes MemoryMax= \
    "ExecStartPre=/usr/bin/profiteer check-config"; do
  check "unit has $directive" grep -q "^$directive" /lib/systemd/system/profiteer.service
done
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify accepts the unit" systemd-analyze verify /lib/systemd/system/profiteer.service
  # Offline: it scores the unit file, no running systemd needed.
  exposure=$(systemd-analyze security --offline=yes /lib/systemd/system/profiteer.service 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  check "systemd-analyze security exposure (${exposure:-none}) is at most 2.0" \
    awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }'
fi

echo "== the installed binary, as the service user"
check "check-config of the installed config" runuser -u profiteer -- /usr/bin/profiteer check-config -c /etc/profiteer/config.ini
check "--help of every command" sh -c 'for c in "" check-config migrate create-admin; do /usr/bin/profiteer $c --help >/dev/null || exit 1; done'

psql "$PG/postgres" -qc "CREATE DATABASE $name" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s#^PG_URI = .*#PG_URI = $PG/$name#" \
    -e "s#^MONGO_MAIN_URI = .*#MONGO_MAIN_URI = $MONGO/$name${MQ//&/\\&}#" \
    -e "s#^REDIS_URI = .*#REDIS_URI = $REDIS/0#" \
    -e "s#^BCRYPT_COST = .*#BCRYPT_COST = 4#" \
    /etc/profiteer/config.ini >"$work/config.ini"
printf '[REDIS]\nREDIS_KEY_PREFIX = %s:\n' "$name" >>"$work/config.ini"
chgrp profiteer "$work" "$work/config.ini"; chmod 750 "$work"; chmod 640 "$work/config.ini"
check "migrate as profiteer" runuser -u profiteer -- /usr/bin/profiteer migrate -c "$work/config.ini"
runuser -u profiteer -- /usr/bin/profiteer -P "$port" -c "$work/config.ini" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs "127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
rpc() { curl -fs "127.0.0.1:$port/rpc" -d "$1"; }
check "it serves /healthz" curl -fs "127.0.0.1:$port/healthz"
check "ping answers pong" sh -c "curl -fs 127.0.0.1:$port/rpc -d '{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}' | grep -q pong"
check "register and login work" sh -c "curl -fs 127.0.0.1:$port/rpc -d '{\"jsonrpc\":\"2.0\",\"method\":\"auth.register\",\"params\":{\"username\":\"pkg\",\"password\":\"correct horse battery staple\"},\"id\":1}' | grep -q user_id && curl -fs 127.0.0.1:$port/rpc -d '{\"jsonrpc\":\"2.0\",\"method\":\"auth.login\",\"params\":{\"username\":\"pkg\",\"password\":\"correct horse battery staple\"},\"id\":2}' | grep -q access_token"
# runuser forks: the server is its child, and runuser exits with its status.
server=$(pgrep -P "$pid" -x profiteer || true)
check "it runs as profiteer" test "$(ps -o user= -p "${server:-0}")" = profiteer
kill -TERM "${server:-$pid}"
status=0; wait "$pid" || status=$?
pid=""
check "SIGTERM stops it with exit 0" test "$status" = 0

echo "== dpkg --purge"
dpkg --purge profiteer
check "the binary is gone" test ! -e /usr/bin/profiteer
check "the config is gone" test ! -e /etc/profiteer/config.ini
check "the unit is gone" test ! -e /lib/systemd/system/profiteer.service
check "the user is gone" sh -c '! getent passwd profiteer'
check "no statoverride is left" sh -c '! dpkg-statoverride --list | grep -q profiteer'

if [ "$failures" -gt 0 ]; then
  echo "test-package: $failures checks failed"; cat "$work/log" 2>/dev/null | tail -20; exit 1
fi
echo "test-package: all checks passed"
