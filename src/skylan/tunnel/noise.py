"""The Noise Protocol Framework pieces skylan needs, for the IK pattern.

Noise_IK_25519_AESGCM_SHA256 (revision 34): the initiator knows the
responder's static key in advance (from the netmap), so the first message
already authenticates the initiator and carries an encrypted payload, and a
session is ready after one round trip. Built only on the ``cryptography``
package's X25519, AES-GCM, SHA-256 and HMAC.

skylan's one variation is its prologue, ``PROLOGUE``, which binds the
protocol version into the handshake hash so that peers of different wire
versions can never complete a handshake; the public test vectors, which use
their own prologue, prove the rest is stock Noise.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from skylan.tunnel.keys import StaticKeypair

PROTOCOL_NAME = b"Noise_IK_25519_AESGCM_SHA256"
PROLOGUE = b"skylan/1"
DHLEN = 32
HASHLEN = 32
TAGLEN = 16
MAX_NONCE = 2**64 - 1


class NoiseError(Exception):
    """A handshake message failed to decrypt or is malformed."""


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hkdf(chaining_key: bytes, ikm: bytes, outputs: int) -> tuple[bytes, ...]:
    temp = hmac.digest(chaining_key, ikm, "sha256")
    out1 = hmac.digest(temp, b"\x01", "sha256")
    if outputs == 2:
        return out1, hmac.digest(temp, out1 + b"\x02", "sha256")
    out2 = hmac.digest(temp, out1 + b"\x02", "sha256")
    return out1, out2, hmac.digest(temp, out2 + b"\x03", "sha256")


def aesgcm_nonce(n: int) -> bytes:
    """Noise's AESGCM nonce: 32 zero bits then the 64-bit counter, big-endian."""
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "big")


class CipherState:
    def __init__(self, key: bytes | None = None) -> None:
        self.key = key
        self._aead = AESGCM(key) if key is not None else None
        self.n = 0

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        if self.n >= MAX_NONCE:
            raise NoiseError("nonce exhausted")
        out = self._aead.encrypt(aesgcm_nonce(self.n), plaintext, ad)
        self.n += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        if self.n >= MAX_NONCE:
            raise NoiseError("nonce exhausted")
        try:
            out = self._aead.decrypt(aesgcm_nonce(self.n), ciphertext, ad)
        except InvalidTag:
            raise NoiseError("authentication failed") from None
        self.n += 1
        return out


class SymmetricState:
    def __init__(self, protocol_name: bytes) -> None:
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.h = sha256(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = hkdf(self.ck, ikm, 2)
        self.cipher = CipherState(temp_k)

    def mix_hash(self, data: bytes) -> None:
        self.h = sha256(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        k1, k2 = hkdf(self.ck, b"", 2)
        return k1, k2


EphemeralFactory = Callable[[], StaticKeypair]


class HandshakeIK:
    """One IK handshake, from either side.

    ``ephemeral`` is injectable only so that the public test vectors can fix
    it; production code lets it default to a fresh key per handshake.
    """

    def __init__(
        self,
        *,
        initiator: bool,
        static: StaticKeypair,
        remote_static: bytes | None = None,
        prologue: bytes = PROLOGUE,
        ephemeral: StaticKeypair | None = None,
    ) -> None:
        if initiator and remote_static is None:
            raise ValueError("the IK initiator must know the responder's static key")
        self.initiator = initiator
        self.s = static
        self.rs = remote_static
        self.e = ephemeral
        self.re: bytes | None = None
        self.ss = SymmetricState(PROTOCOL_NAME)
        self.ss.mix_hash(prologue)
        # pre-message "<- s": the responder's static key is known to both
        self.ss.mix_hash(remote_static if initiator else static.public)  # type: ignore[arg-type]

    @property
    def handshake_hash(self) -> bytes:
        return self.ss.h

    # -> e, es, s, ss
    def write_message_1(self, payload: bytes) -> bytes:
        assert self.initiator and self.rs is not None
        e = self.e = self.e or StaticKeypair.generate()
        self.ss.mix_hash(e.public)
        self.ss.mix_key(_dh(e, self.rs))
        enc_s = self.ss.encrypt_and_hash(self.s.public)
        self.ss.mix_key(_dh(self.s, self.rs))
        return e.public + enc_s + self.ss.encrypt_and_hash(payload)

    def read_message_1(self, message: bytes) -> bytes:
        assert not self.initiator
        if len(message) < DHLEN + DHLEN + TAGLEN + TAGLEN:
            raise NoiseError("handshake message 1 too short")
        self.re = message[:DHLEN]
        self.ss.mix_hash(self.re)
        self.ss.mix_key(_dh(self.s, self.re))
        self.rs = self.ss.decrypt_and_hash(message[DHLEN : DHLEN * 2 + TAGLEN])
        self.ss.mix_key(_dh(self.s, self.rs))
        return self.ss.decrypt_and_hash(message[DHLEN * 2 + TAGLEN :])

    # <- e, ee, se
    def write_message_2(self, payload: bytes) -> bytes:
        assert not self.initiator and self.re is not None and self.rs is not None
        e = self.e = self.e or StaticKeypair.generate()
        self.ss.mix_hash(e.public)
        self.ss.mix_key(_dh(e, self.re))
        self.ss.mix_key(_dh(e, self.rs))
        return e.public + self.ss.encrypt_and_hash(payload)

    def read_message_2(self, message: bytes) -> bytes:
        assert self.initiator and self.e is not None
        if len(message) < DHLEN + TAGLEN:
            raise NoiseError("handshake message 2 too short")
        self.re = message[:DHLEN]
        self.ss.mix_hash(self.re)
        self.ss.mix_key(_dh(self.e, self.re))
        self.ss.mix_key(_dh(self.s, self.re))
        return self.ss.decrypt_and_hash(message[DHLEN:])

    def split(self) -> tuple[bytes, bytes]:
        """(send key, receive key) for this side."""
        k1, k2 = self.ss.split()
        return (k1, k2) if self.initiator else (k2, k1)


def _dh(pair: StaticKeypair, public: bytes) -> bytes:
    """Every DH of the handshake: a peer's bad key is a :class:`NoiseError`
    (a failed handshake with that peer), never an exception of the caller's."""
    try:
        shared = pair.dh(public)
    except ValueError:  # an all-zero result: a low-order point (or not 32 bytes)
        raise NoiseError("invalid public key") from None
    return shared
