#!/usr/bin/env bash
# Builds the Debian package (target/debian/profiteer_<version>_<arch>.deb)
# with cargo-deb, installing cargo-deb once if it is missing. Prints the
# package's path on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
  echo "package: installing cargo-deb (once; a few minutes of CPU)" >&2
  cargo install cargo-deb --locked >&2
fi
# cargo deb builds the release binary itself (honours CARGO_TARGET_DIR).
# --dbgsym: the line tables of [profile.release] go to a separate
# profiteer-dbgsym .ddeb; the installed binary is stripped.
out=$(cargo deb --dbgsym 2>&1 | tee /dev/stderr | tail -3)
deb=$(printf '%s\n' "$out" | grep -oE '/[^ ]+\.deb$' | tail -1 || true)
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
  echo "package: cargo deb did not say where the package is" >&2
  exit 1
fi
echo "$deb"
