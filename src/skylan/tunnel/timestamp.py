"""TAI64N timestamps for handshake initiations.

A responder remembers the newest timestamp each peer has sent and refuses an
initiation that is not newer, so a captured initiation cannot be replayed to
reset a session. Wall-clock based so that it survives restarts.
"""

from __future__ import annotations

import struct

_TAI64_EPOCH = 2**62 + 10  # TAI64 label of 1970-01-01 00:00:10 TAI
_FMT = struct.Struct("!QI")


def encode(unix_time: float) -> bytes:
    seconds = int(unix_time)
    nanos = int((unix_time - seconds) * 1e9)
    return _FMT.pack(_TAI64_EPOCH + seconds, min(max(nanos, 0), 999_999_999))


def is_newer(candidate: bytes, latest: bytes | None) -> bool:
    """Big-endian byte order makes the encoded form compare like the time."""
    return latest is None or candidate > latest
