#!/usr/bin/env bash
# Sets everything up and runs every test: unit tests beside the code, and
# the integration binary (tests/api) that starts the real server against
# throwaway databases named profiteer_test_*.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
set -a
# shellcheck disable=SC1091
. .run/services.env
set +a
# The Thrift tests drive the [THRIFT] port with the old callers' library.
scripts/thriftpy2.sh >/dev/null
# The passkey tests sign in with a software authenticator (soft-webauthn).
scripts/soft-webauthn.sh >/dev/null
# --lib --bins --tests: every test we have, and no empty doc-test run last.
cargo test --lib --bins --tests "$@"
# The HTTP server's own unit tests (crates/profiteer-http, not a workspace member).
if [ $# -eq 0 ]; then
  cargo test --manifest-path crates/profiteer-http/Cargo.toml --lib --target-dir target/tiny_http
  # The whole scale-out layout of scripts/cluster.sh, once, with the binary
  # just tested (as root: PostgreSQL runs as user postgres).
  if [ "$(id -u)" = 0 ]; then
    PROFITEER_BIN="$PWD/target/debug/profiteer" scripts/test-cluster.sh
  else
    echo "test.sh: scripts/test-cluster.sh skipped (needs root)" >&2
  fi
fi
