"""Static X25519 identities and their key files.

A node's private key never leaves it; the file is created 0600 and a key file
that other users could read is refused, as ssh does, because such a key must
be assumed compromised.
"""

from __future__ import annotations

import base64
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from skylan.privatefile import write_private

KEY_LEN = 32


class KeyFileError(Exception):
    """A key file is missing, malformed or readable by others."""


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

    def save(self, path: Path) -> None:
        """Write the private key (base64) readable by the owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, base64.b64encode(self.private) + b"\n")

    @classmethod
    def load(cls, path: Path) -> StaticKeypair:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyFileError(f"{path}: no such key file") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"{path}: private key is accessible by other users "
                f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 {path}"
            )
        try:
            private = base64.b64decode(path.read_bytes().strip(), validate=True)
            return cls.from_private(private)
        except ValueError as exc:
            raise KeyFileError(f"{path}: not a skylan private key ({exc})") from None

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

    @classmethod
    def load_or_create(cls, path: Path) -> StaticKeypair:
        if path.exists():
            return cls.load(path)
        pair = cls.generate()
        pair.save(path)
        return pair


def encode_public(public: bytes) -> str:
    return base64.b64encode(public).decode()


# Any scalar works: X25519 clamps every scalar to a multiple of 8, so a point of
# order 1, 2, 4 or 8 gives the all-zero result whatever the scalar is.
_PROBE = X25519PrivateKey.from_private_bytes(b"\x01" * KEY_LEN)


class LowOrderKey(ValueError):
    """A public key on which every Diffie-Hellman gives zero: no shared secret."""


def check_public(raw: bytes) -> bytes:
    """``raw`` if it is a usable X25519 public key; ValueError otherwise.

    A low-order point (all zeros, one, the points of order 8, and their
    non-canonical encodings) makes every key exchange with it all zeros: a
    peer presenting one would have no secret with anybody, and one such
    member could make the others' handshakes fail.
    """
    if len(raw) != KEY_LEN:
        raise ValueError("public key must decode to 32 bytes")
    try:
        _PROBE.exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError:
        raise LowOrderKey("public key is a low-order point (no shared secret)") from None
    return raw


def decode_b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("public key is not valid base64") from None


def decode_public(text: str) -> bytes:
    """Parse a base64 public key; raises ValueError with a clear message."""
    return check_public(decode_b64(text))
