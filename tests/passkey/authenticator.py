"""A software passkey for the passkey tests: soft-webauthn's
SoftWebauthnDevice answers navigator.credentials.create/get, driven here the
way a browser would drive a platform authenticator.

stdin: {"op": "create" | "get", "options": <the publicKey options JSON the
server answered>, "origin": "https://...", "device": <state printed by an
earlier call, for "get">, optional "rp_id" (claim another RP id),
"sign_count" (the counter this assertion carries), "backup" (set the
backup-eligible and backed-up flags)}.

stdout: {"credential": <RegistrationResponseJSON or
AuthenticationResponseJSON, as credential.toJSON() gives it>, "device":
<state to pass to the next call>}.

soft-webauthn sets only the user-present flag; a passkey also verifies its
user (PIN, biometrics), so the UV flag (and, with "backup", BE and BS) is
set on the authenticator data it made, which is then signed again with the
device's own key. Everything else is the device's own work.
"""

import base64
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor
from fido2.utils import sha256
from soft_webauthn import SoftWebauthnDevice

UP, UV, BE, BS = 0x01, 0x04, 0x08, 0x10


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).decode("ascii").rstrip("=")


def flags(backup):
    return UV | ((BE | BS) if backup else 0)


def save(device):
    return {
        "credential_id": b64e(device.credential_id),
        "private_key": device.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
        "rp_id": device.rp_id,
        "user_handle": b64e(device.user_handle),
        "sign_count": device.sign_count,
    }


def load(state):
    device = SoftWebauthnDevice()
    device.credential_id = b64d(state["credential_id"])
    device.private_key = serialization.load_pem_private_key(
        state["private_key"].encode("ascii"), password=None
    )
    device.rp_id = state["rp_id"]
    device.user_handle = b64d(state["user_handle"])
    device.sign_count = state["sign_count"]
    return device


def create(req):
    options = dict(req["options"])
    options["challenge"] = b64d(options["challenge"])
    options["user"] = dict(options["user"], id=b64d(options["user"]["id"]))
    if "rp_id" in req:
        options["rp"] = dict(options["rp"], id=req["rp_id"])
    device = SoftWebauthnDevice()
    made = device.create({"publicKey": options}, req["origin"])
    attestation = cbor.decode(made["response"]["attestationObject"])
    auth_data = bytearray(attestation["authData"])
    auth_data[32] |= flags(req.get("backup", False))
    attestation["authData"] = bytes(auth_data)
    credential = {
        "id": b64e(made["rawId"]),
        "rawId": b64e(made["rawId"]),
        "type": "public-key",
        "response": {
            "clientDataJSON": b64e(made["response"]["clientDataJSON"]),
            "attestationObject": b64e(cbor.encode(attestation)),
            "transports": ["internal"],
        },
        "clientExtensionResults": {},
        "authenticatorAttachment": "platform",
    }
    return credential, device


def get(req):
    device = load(req["device"])
    options = dict(req["options"])
    options["challenge"] = b64d(options["challenge"])
    if "rp_id" in req:
        device.rp_id = req["rp_id"]
        options["rpId"] = req["rp_id"]
    if "sign_count" in req:
        device.sign_count = req["sign_count"] - 1  # get() counts one up
    made = device.get({"publicKey": options}, req["origin"])
    response = made["response"]
    auth_data = bytearray(response["authenticatorData"])
    auth_data[32] |= flags(req.get("backup", False))
    auth_data = bytes(auth_data)
    client_data = response["clientDataJSON"]
    signature = device.private_key.sign(
        auth_data + sha256(client_data), ec.ECDSA(hashes.SHA256())
    )
    credential = {
        "id": b64e(made["rawId"]),
        "rawId": b64e(made["rawId"]),
        "type": "public-key",
        "response": {
            "clientDataJSON": b64e(client_data),
            "authenticatorData": b64e(auth_data),
            "signature": b64e(signature),
            "userHandle": b64e(response["userHandle"]),
        },
        "clientExtensionResults": {},
        "authenticatorAttachment": "platform",
    }
    return credential, device


def main():
    req = json.load(sys.stdin)
    credential, device = (create if req["op"] == "create" else get)(req)
    json.dump({"credential": credential, "device": save(device)}, sys.stdout)


if __name__ == "__main__":
    main()
