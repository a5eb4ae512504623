"""Handshake DoS protection: MAC1, MAC2 and cookie replies, as in WireGuard.

* ``mac1`` (keyed by a hash of the responder's public key) is checked before
  any Diffie-Hellman work, so only parties that know the responder's key can
  make it do any.
* When the responder is under load it answers initiations that lack a valid
  ``mac2`` with a cookie reply instead of doing DH. The cookie is a MAC of the
  sender's address under a secret that rotates every two minutes, so only a
  sender that really receives at that address can present it.

skylan's variation: HMAC-SHA256 truncated to 16 bytes in place of keyed
BLAKE2s, and AES-256-GCM with a random 96-bit nonce in place of
XChaCha20-Poly1305, keeping the whole protocol on AES and SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from skylan.tunnel.wire import COOKIE_LEN, COOKIE_NONCE_LEN, MAC_LEN, CookieReply

COOKIE_SECRET_LIFETIME = 120.0
COOKIE_VALID_FOR = 120.0 - 5.0  # the initiator stops using a cookie a bit early

_LABEL_MAC1 = b"mac1----"
_LABEL_COOKIE = b"cookie--"


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")[:MAC_LEN]


def mac1_key(responder_public: bytes) -> bytes:
    return hashlib.sha256(_LABEL_MAC1 + responder_public).digest()


def cookie_key(responder_public: bytes) -> bytes:
    return hashlib.sha256(_LABEL_COOKIE + responder_public).digest()


def compute_mac1(responder_public: bytes, msg: bytes) -> bytes:
    return _mac(mac1_key(responder_public), msg)


def compute_mac2(cookie: bytes, msg_with_mac1: bytes) -> bytes:
    return _mac(cookie, msg_with_mac1)


def address_bytes(addr: tuple[str, int]) -> bytes:
    return f"{addr[0]}|{addr[1]}".encode()


class CookieChecker:
    """The responder's side: verifies MACs and makes cookie replies."""

    def __init__(self, public: bytes, *, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._mac1_key = mac1_key(public)
        self._aead = AESGCM(cookie_key(public))
        self._random = random_bytes
        self._secret = random_bytes(32)
        self._secret_born = float("-inf")

    def mac1_valid(self, msg: bytes, mac1: bytes) -> bool:
        return hmac.compare_digest(_mac(self._mac1_key, msg), mac1)

    def _cookie(self, addr: tuple[str, int], now: float) -> bytes:
        if now - self._secret_born >= COOKIE_SECRET_LIFETIME:
            self._secret = self._random(32)
            self._secret_born = now
        return _mac(self._secret, address_bytes(addr))

    def mac2_valid(
        self, msg_with_mac1: bytes, mac2: bytes, addr: tuple[str, int], now: float
    ) -> bool:
        return hmac.compare_digest(compute_mac2(self._cookie(addr, now), msg_with_mac1), mac2)

    def make_reply(
        self, receiver_index: int, mac1: bytes, addr: tuple[str, int], now: float
    ) -> CookieReply:
        nonce = self._random(COOKIE_NONCE_LEN)
        sealed = self._aead.encrypt(nonce, self._cookie(addr, now), mac1)
        return CookieReply(receiver_index, nonce, sealed)


def open_cookie_reply(
    responder_public: bytes, reply: CookieReply, last_mac1: bytes
) -> bytes | None:
    """The initiator's side: the cookie, or None if the reply is not genuine."""
    try:
        cookie = AESGCM(cookie_key(responder_public)).decrypt(
            reply.nonce, reply.encrypted_cookie, last_mac1
        )
    except InvalidTag:
        return None
    return cookie if len(cookie) == COOKIE_LEN else None
