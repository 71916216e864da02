#!/usr/bin/env bash
# Makes a Python virtualenv with soft-webauthn (a software WebAuthn
# authenticator, from PyPI) and prints its python's path. The passkey tests
# (tests/api/auth/passkey.rs) register and sign in with it through
# tests/passkey/authenticator.py. Versions pinned: soft-webauthn 0.1.4 is
# written against fido2 1.x (`fido2.cbor`, `AttestedCredentialData.create`).
# Kept under ~/.cache/profiteer (or $PROFITEER_CACHE) and reused; safe to
# run again and from several processes at once.
set -euo pipefail
CACHE=${PROFITEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/profiteer}
VERSION=0.1.4
VENV="$CACHE/soft-webauthn-$VERSION"
PY="$VENV/bin/python"
mkdir -p "$CACHE"
exec 9>"$CACHE/soft-webauthn.lock"
flock 9
if ! "$PY" -c 'import soft_webauthn' 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$PY" -m pip install -q --disable-pip-version-check \
    "soft-webauthn==$VERSION" "fido2==1.2.0" "cryptography==44.0.3" >&2
fi
echo "$PY"
