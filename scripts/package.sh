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
# Its output goes to our stderr as it comes, and to a file we read the path
# from (a `tee /dev/stderr` would reopen, and so truncate, a log behind it).
said=$(mktemp)
trap 'rm -f "$said"' EXIT
cargo deb --dbgsym 2>&1 | tee "$said" >&2
out=$(tail -3 "$said")
deb=$(printf '%s\n' "$out" | grep -oE '/[^ ]+\.deb$' | tail -1 || true)
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
  echo "package: cargo deb did not say where the package is" >&2
  exit 1
fi
echo "$deb"
