"""Static X25519 identities: a node's key pair and the lane keys derived from it.

Only types and encodings: where a key is stored (and who may read the file) is
the agent's business (:mod:`skylan.agent.state`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from skylan.model.publickey import KEY_LEN, encode_public


@dataclass(frozen=True)
class StaticKeypair:
    private: bytes
    public: bytes

    @classmethod
    def generate(cls) -> StaticKeypair:
        return cls.from_private(
            X25519PrivateKey.generate().private_bytes(
                Encoding.Raw, PrivateFormat.Raw, NoEncryption()
            )
        )

    @classmethod
    def from_private(cls, private: bytes) -> StaticKeypair:
        if len(private) != KEY_LEN:
            raise ValueError("an X25519 private key is 32 bytes")
        key = X25519PrivateKey.from_private_bytes(private)
        return cls(private, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def dh(self, public: bytes) -> bytes:
        return X25519PrivateKey.from_private_bytes(self.private).exchange(
            X25519PublicKey.from_public_bytes(public)
        )

    @property
    def public_b64(self) -> str:
        return encode_public(self.public)

    def lane(self, lane: int) -> StaticKeypair:
        """The identity of data-plane worker lane ``lane`` (0 is this key).

        Each lane runs its own tunnel engine, so it needs its own identity for
        peers to tell its sessions apart. Derived from the node key (HKDF), a
        restarted agent keeps the same lane keys, and only the node key is
        ever stored; peers learn the public halves from the controller.
        """
        if lane == 0:
            return self
        private = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_LEN,
            salt=b"skylan lane key v1",
            info=lane.to_bytes(2, "big"),
        ).derive(self.private)
        return StaticKeypair.from_private(private)
