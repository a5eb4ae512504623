"""Noise_IK_25519_AESGCM_SHA256 against the public cacophony test vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.noise import PROTOCOL_NAME, CipherState, HandshakeIK, aesgcm_nonce

# inside the repository, so the suite passes from a clone in any folder
VECTORS = (
    Path(__file__).resolve().parents[2] / "data" / "noise" / "cacophony-IK_25519_AESGCM_SHA256.json"
)


def _vectors() -> list[dict[str, Any]]:
    data = json.loads(VECTORS.read_text())
    return [v for v in data["vectors"] if v["protocol_name"] == PROTOCOL_NAME.decode()]


def test_vectors_are_present() -> None:
    assert VECTORS.exists(), f"missing {VECTORS}"
    assert _vectors(), "no Noise_IK_25519_AESGCM_SHA256 vector in the file"


@pytest.mark.parametrize("vector", _vectors())
def test_cacophony_vector(vector: dict[str, Any]) -> None:
    h = bytes.fromhex
    assert not vector.get("init_psks") and not vector.get("resp_psks")
    resp_static = StaticKeypair.from_private(h(vector["resp_static"]))
    init = HandshakeIK(
        initiator=True,
        static=StaticKeypair.from_private(h(vector["init_static"])),
        remote_static=h(vector["init_remote_static"]),
        prologue=h(vector["init_prologue"]),
        ephemeral=StaticKeypair.from_private(h(vector["init_ephemeral"])),
    )
    resp = HandshakeIK(
        initiator=False,
        static=resp_static,
        prologue=h(vector["resp_prologue"]),
        ephemeral=StaticKeypair.from_private(h(vector["resp_ephemeral"])),
    )
    msgs = vector["messages"]
    m1 = init.write_message_1(h(msgs[0]["payload"]))
    assert m1.hex() == msgs[0]["ciphertext"]
    assert resp.read_message_1(m1) == h(msgs[0]["payload"])
    m2 = resp.write_message_2(h(msgs[1]["payload"]))
    assert m2.hex() == msgs[1]["ciphertext"]
    assert init.read_message_2(m2) == h(msgs[1]["payload"])
    assert init.handshake_hash.hex() == vector["handshake_hash"]
    assert resp.handshake_hash.hex() == vector["handshake_hash"]
    # transport messages alternate initiator -> responder, responder -> initiator
    i_send, i_recv = (CipherState(k) for k in init.split())
    r_send, r_recv = (CipherState(k) for k in resp.split())
    for n, msg in enumerate(msgs[2:]):
        sender, receiver = (i_send, r_recv) if n % 2 == 0 else (r_send, i_recv)
        ct = sender.encrypt_with_ad(b"", h(msg["payload"]))
        assert ct.hex() == msg["ciphertext"]
        assert receiver.decrypt_with_ad(b"", ct) == h(msg["payload"])


def test_nonce_layout() -> None:
    assert aesgcm_nonce(1) == bytes(11) + b"\x01"
