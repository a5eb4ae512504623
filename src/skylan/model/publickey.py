"""X25519 public keys as they travel: base64 text, checked to be usable.

Below every layer that receives keys from elsewhere (the controller's API, the
agent's netmaps, the tunnel engine), so each refuses the same keys the same way.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

KEY_LEN = 32


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
    """Strict base64 (no stray characters)."""
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("public key is not valid base64") from None


def decode_public(text: str) -> bytes:
    """Parse a base64 public key; raises ValueError with a clear message."""
    return check_public(decode_b64(text))
