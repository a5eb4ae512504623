"""skylan's tunnel wire format: message headers and the encrypted container.

Every UDP datagram starts with a one-byte message type. Handshake messages
are fixed-size; data chunks carry a 16-byte header. See ``docs/protocol.md``
for the byte layout and the reasons behind it. Decoders never raise anything
but :class:`WireError`, so a malformed datagram is always a counted drop.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from skylan.tunnel.framerows import VNET_LEN, FrameRows
from skylan.tunnel.noise import DHLEN, TAGLEN


class WireError(ValueError):
    """A datagram or container does not parse; ``reason`` names the counter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MsgType(IntEnum):
    INITIATION = 1
    RESPONSE = 2
    COOKIE_REPLY = 3
    DATA = 4
    PROBE = 5  # is this path to the peer alive? (see skylan.tunnel.paths)
    PROBE_ACK = 6
    # 7 and 8 are the reflexive-address exchange with the controller
    # (skylan.model.reflexive): not the tunnel's, but on its socket


MAC_LEN = 16
TIMESTAMP_LEN = 12
COOKIE_LEN = 16
COOKIE_NONCE_LEN = 12

NOISE_MSG1_LEN = DHLEN + (DHLEN + TAGLEN) + (TIMESTAMP_LEN + TAGLEN)  # 108
NOISE_MSG2_LEN = DHLEN + TAGLEN  # 48

_INIT_HDR = struct.Struct("!B3xI")  # type, sender index
_RESP_HDR = struct.Struct("!B3xII")  # type, sender index, receiver index
_COOKIE_HDR = struct.Struct("!B3xI")  # type, receiver index
DATA_HDR = struct.Struct("!BBBBIQ")  # type, flags, chunk index, chunk count, receiver, counter
_PROBE_HDR = struct.Struct("!B3xI8s")  # type, receiver index, nonce

INITIATION_LEN = _INIT_HDR.size + NOISE_MSG1_LEN + 2 * MAC_LEN  # 148
RESPONSE_LEN = _RESP_HDR.size + NOISE_MSG2_LEN + 2 * MAC_LEN  # 92
COOKIE_REPLY_LEN = _COOKIE_HDR.size + COOKIE_NONCE_LEN + COOKIE_LEN + TAGLEN  # 52
DATA_HDR_LEN = DATA_HDR.size  # 16
PROBE_LEN = _PROBE_HDR.size + MAC_LEN  # 32
PROBE_NONCE_LEN = 8
MAX_CHUNKS = 128
# Data header flags. A redundant datagram is not part of the ciphertext: with
# chunk index g < fec_groups(count) it is the XOR of full chunks g, g + groups,
# g + 2 * groups, …; with index count - 1 it is a copy of the last chunk.
FLAG_REDUNDANT = 0x01
FEC_GROUP = 8  # full chunks per parity chunk (about 13 % more datagrams)


@dataclass(frozen=True)
class Initiation:
    sender_index: int
    noise: bytes
    mac1: bytes
    mac2: bytes

    def encode_without_macs(self) -> bytes:
        return _INIT_HDR.pack(MsgType.INITIATION, self.sender_index) + self.noise


@dataclass(frozen=True)
class Response:
    sender_index: int
    receiver_index: int
    noise: bytes
    mac1: bytes
    mac2: bytes

    def encode_without_macs(self) -> bytes:
        return _RESP_HDR.pack(MsgType.RESPONSE, self.sender_index, self.receiver_index) + (
            self.noise
        )


@dataclass(frozen=True)
class CookieReply:
    receiver_index: int
    nonce: bytes
    encrypted_cookie: bytes

    def encode(self) -> bytes:
        return (
            _COOKIE_HDR.pack(MsgType.COOKIE_REPLY, self.receiver_index)
            + self.nonce
            + self.encrypted_cookie
        )


class DataHeader(NamedTuple):
    """A NamedTuple, not a dataclass: one is built per received chunk."""

    chunk_index: int
    chunk_count: int
    receiver_index: int
    counter: int
    flags: int = 0

    def encode(self) -> bytes:
        return DATA_HDR.pack(
            MsgType.DATA,
            self.flags,
            self.chunk_index,
            self.chunk_count,
            self.receiver_index,
            self.counter,
        )

    def aad(self) -> bytes:
        """Associated data: the header minus the chunk index and the redundancy
        flag, equal for all chunks (parity and copies are checked through the
        message they rebuild)."""
        return DATA_HDR.pack(
            MsgType.DATA, 0, 0, self.chunk_count, self.receiver_index, self.counter
        )


@dataclass(frozen=True)
class Probe:
    """A path probe or its answer: the receiver's session index, a nonce the
    answer echoes, and a MAC under a key of that session (see
    :mod:`skylan.tunnel.paths`), so only the session's holders make one."""

    kind: MsgType  # PROBE or PROBE_ACK
    receiver_index: int
    nonce: bytes
    mac: bytes

    def header(self) -> bytes:
        return _PROBE_HDR.pack(self.kind, self.receiver_index, self.nonce)

    def encode(self) -> bytes:
        return self.header() + self.mac


def decode_probe(datagram: bytes | memoryview) -> Probe:
    if len(datagram) != PROBE_LEN or datagram[1:4] != b"\x00\x00\x00":
        raise WireError("bad_probe")
    kind, receiver, nonce = _PROBE_HDR.unpack_from(datagram)
    return Probe(MsgType(kind), receiver, nonce, bytes(datagram[_PROBE_HDR.size :]))


def message_type(datagram: bytes | memoryview) -> MsgType:
    if len(datagram) == 0:
        raise WireError("empty")
    try:
        return MsgType(datagram[0])
    except ValueError:
        raise WireError("unknown_type") from None


def decode_initiation(datagram: bytes | memoryview) -> Initiation:
    if len(datagram) != INITIATION_LEN or datagram[1:4] != b"\x00\x00\x00":
        raise WireError("bad_initiation")
    _, sender = _INIT_HDR.unpack_from(datagram)
    body = bytes(datagram[_INIT_HDR.size :])
    return Initiation(sender, body[:NOISE_MSG1_LEN], body[-32:-16], body[-16:])


def decode_response(datagram: bytes | memoryview) -> Response:
    if len(datagram) != RESPONSE_LEN or datagram[1:4] != b"\x00\x00\x00":
        raise WireError("bad_response")
    _, sender, receiver = _RESP_HDR.unpack_from(datagram)
    body = bytes(datagram[_RESP_HDR.size :])
    return Response(sender, receiver, body[:NOISE_MSG2_LEN], body[-32:-16], body[-16:])


def decode_cookie_reply(datagram: bytes | memoryview) -> CookieReply:
    if len(datagram) != COOKIE_REPLY_LEN or datagram[1:4] != b"\x00\x00\x00":
        raise WireError("bad_cookie_reply")
    _, receiver = _COOKIE_HDR.unpack_from(datagram)
    body = bytes(datagram[_COOKIE_HDR.size :])
    return CookieReply(receiver, body[:COOKIE_NONCE_LEN], body[COOKIE_NONCE_LEN:])


def decode_data_header(datagram: bytes | memoryview) -> DataHeader:
    if len(datagram) < DATA_HDR_LEN + 1:
        raise WireError("short_data")
    _, flags, index, count, receiver, counter = DATA_HDR.unpack_from(datagram)
    if flags & ~FLAG_REDUNDANT or count == 0 or count > MAX_CHUNKS or index >= count:
        raise WireError("bad_data_header")
    if flags and (count < 3 or (index != count - 1 and index >= fec_groups(count))):
        raise WireError("bad_data_header")
    return DataHeader(index, count, receiver, counter, flags)


def fec_groups(count: int) -> int:
    """Parity chunks sent with a message of ``count`` chunks when its receiver
    asked for redundancy: one per ``FEC_GROUP`` full chunks (the short last
    chunk is sent twice instead); none under 3 chunks."""
    return -(-(count - 1) // FEC_GROUP) if count >= 3 else 0


# -- the encrypted container -------------------------------------------------


class Kind(IntEnum):
    KEEPALIVE = 0
    FRAMES = 1
    SUPERFRAME = 2
    VNET_FRAMES = 3  # several frames, each with its virtio_net_hdr (small-packet batches)
    FEEDBACK = 4  # the path to the sender loses chunks: please add redundancy


VNET_HDR_LEN = VNET_LEN  # struct virtio_net_hdr without num_buffers
CONTAINER_PREFIX = struct.Struct("!BI")  # kind, network id
CONTAINER_PREFIX_LEN = CONTAINER_PREFIX.size  # 5
_FRAME_LEN = struct.Struct("!H")
MIN_FRAME = 14  # an Ethernet header
MAX_FRAME = 65535


@dataclass(frozen=True)
class Container:
    kind: Kind
    network_id: int = 0
    frames: tuple[bytes | memoryview, ...] = ()
    vnet_hdr: bytes = b""
    vnet_hdrs: tuple[bytes, ...] = ()  # VNET_FRAMES: one per frame
    want_fec: bool = False  # FEEDBACK
    # VNET_FRAMES of one length: the frames as rows (``frames`` and
    # ``vnet_hdrs`` are then empty)
    rows: FrameRows | None = None

    def vnet_items(self) -> list[tuple[bytes, bytes | memoryview]]:
        """A VNET_FRAMES container's frames, each with its virtio header."""
        if self.rows is not None:
            return list(self.rows.items())
        return list(zip(self.vnet_hdrs, self.frames, strict=True))


def encode_frames(network_id: int, frames: list[bytes]) -> bytes:
    parts = [CONTAINER_PREFIX.pack(Kind.FRAMES, network_id)]
    for frame in frames:
        if not MIN_FRAME <= len(frame) <= MAX_FRAME:
            raise ValueError(f"frame of {len(frame)} bytes is not an Ethernet frame")
        parts += [_FRAME_LEN.pack(len(frame)), frame]
    return b"".join(parts)


# a frame with its virtio_net_hdr, as a TAP read gives them (the data plane
# slices both out of its read buffer as bytearrays: one copy each)
VnetItem = tuple[bytes | bytearray, bytes | bytearray]


def encode_vnet_frames(network_id: int, items: list[VnetItem]) -> bytes:
    """Frames read from a TAP together, each with its virtio header (which may
    ask the receiver's kernel to finish a checksum): one seal for the batch."""
    parts: list[bytes | bytearray] = [CONTAINER_PREFIX.pack(Kind.VNET_FRAMES, network_id)]
    for vnet_hdr, frame in items:
        if len(vnet_hdr) != VNET_HDR_LEN:
            raise ValueError("virtio_net_hdr must be 10 bytes")
        if not MIN_FRAME <= len(frame) <= MAX_FRAME:
            raise ValueError(f"frame of {len(frame)} bytes is not an Ethernet frame")
        parts += [_FRAME_LEN.pack(len(frame)), vnet_hdr, frame]
    return b"".join(parts)


def put_superframe_prefix(buf: bytearray | memoryview, network_id: int) -> None:
    """Write a super-frame container's prefix into ``buf[:CONTAINER_PREFIX_LEN]``,
    for a caller that read the virtio header and frame right after it."""
    CONTAINER_PREFIX.pack_into(buf, 0, Kind.SUPERFRAME, network_id)


def encode_superframe(
    network_id: int, vnet_hdr: bytes | bytearray, frame: bytes | bytearray
) -> bytes:
    if len(vnet_hdr) != VNET_HDR_LEN:
        raise ValueError("virtio_net_hdr must be 10 bytes")
    return CONTAINER_PREFIX.pack(Kind.SUPERFRAME, network_id) + vnet_hdr + frame


KEEPALIVE = bytes([Kind.KEEPALIVE])
# Sent by a receiver that recently lost or repaired chunked messages. An older
# agent drops the unknown kind (counted), so asking never breaks a peer.
FEEDBACK_WANT_FEC = bytes([Kind.FEEDBACK, 0x01])


def decode_container(plaintext: bytes | memoryview) -> Container:
    if len(plaintext) == 0:
        raise WireError("empty_container")
    try:
        kind = Kind(plaintext[0])
    except ValueError:
        raise WireError("bad_container_kind") from None
    if kind is Kind.KEEPALIVE:
        if len(plaintext) != 1:
            raise WireError("bad_keepalive")
        return Container(kind)
    if kind is Kind.FEEDBACK:
        if len(plaintext) != len(FEEDBACK_WANT_FEC):
            raise WireError("bad_feedback")
        return Container(kind, want_fec=bool(plaintext[1] & 0x01))
    if len(plaintext) < CONTAINER_PREFIX_LEN:
        raise WireError("short_container")
    _, network_id = CONTAINER_PREFIX.unpack_from(plaintext)
    if kind is Kind.SUPERFRAME:
        start = CONTAINER_PREFIX_LEN + VNET_HDR_LEN
        if len(plaintext) < start + MIN_FRAME:
            raise WireError("short_superframe")
        # immutable plaintext (as decryption returns it) is viewed, not copied:
        # a 64 KB super-frame goes to the TAP straight from the decrypted bytes
        frame: bytes | memoryview = (
            memoryview(plaintext)[start:]
            if isinstance(plaintext, bytes)
            else bytes(plaintext[start:])
        )
        return Container(kind, network_id, (frame,), bytes(plaintext[CONTAINER_PREFIX_LEN:start]))
    with_vnet = kind is Kind.VNET_FRAMES
    if with_vnet and isinstance(plaintext, bytes):
        rows = FrameRows.find(plaintext, CONTAINER_PREFIX_LEN, MIN_FRAME)
        if rows is not None:
            return Container(kind, network_id, rows=rows)
    extra = VNET_HDR_LEN if with_vnet else 0
    frames = []
    vnet_hdrs = []
    pos = CONTAINER_PREFIX_LEN
    end = len(plaintext)
    while pos < end:
        if pos + 2 + extra > end:
            raise WireError("truncated_frame_length")
        (length,) = _FRAME_LEN.unpack_from(plaintext, pos)
        pos += 2
        if with_vnet:
            vnet_hdrs.append(bytes(plaintext[pos : pos + VNET_HDR_LEN]))
            pos += VNET_HDR_LEN
        if length < MIN_FRAME or pos + length > end:
            raise WireError("bad_frame_length")
        frames.append(bytes(plaintext[pos : pos + length]))
        pos += length
    if not frames:
        raise WireError("no_frames")
    return Container(kind, network_id, tuple(frames), vnet_hdrs=tuple(vnet_hdrs))
