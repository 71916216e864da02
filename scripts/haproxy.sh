#!/usr/bin/env bash
# Makes sure HAProxy (Debian's package) is installed and prints the path of
# its binary. The balancer tests (tests/api/faults/balancer.rs) and
# scripts/cluster.sh call it; deploy/haproxy.cfg is the configuration.
set -euo pipefail
if ! command -v haproxy >/dev/null; then
  echo "haproxy: installing Debian's package" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "haproxy: not installed, and only root can install it (apt-get install haproxy)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
  # The package starts a system-wide haproxy on its own stock config: ours
  # run privately, so leave no unused daemon behind.
  if command -v systemctl >/dev/null && systemctl is-active -q haproxy 2>/dev/null; then
    systemctl stop haproxy || true
  fi
fi
command -v haproxy
