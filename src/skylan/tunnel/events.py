"""What the tunnel engine tells its driver, in the order it happened."""

from __future__ import annotations

from dataclasses import dataclass

from skylan.tunnel.framerows import FrameRows

Address = tuple[str, int]


@dataclass(frozen=True)
class HandshakeCompleted:
    peer: bytes  # the peer's static public key
    endpoint: Address
    initiator: bool


@dataclass(frozen=True)
class EndpointChanged:
    """The peer roamed: an authenticated packet came from a new address."""

    peer: bytes
    old: Address | None
    new: Address


@dataclass(frozen=True)
class FramesReceived:
    peer: bytes
    network_id: int
    frames: tuple[bytes | memoryview, ...]
    vnet_hdrs: tuple[bytes, ...] = ()  # one per frame, when the sender sent them


@dataclass(frozen=True)
class FrameRowsReceived:
    """Like :class:`FramesReceived`, for a batch whose frames all have one
    length: the frames as rows of the decrypted message, for a driver that
    handles such a batch as a whole (``rows.items()`` gives them one by one)."""

    peer: bytes
    network_id: int
    rows: FrameRows


@dataclass(frozen=True)
class SuperFrameReceived:
    peer: bytes
    network_id: int
    vnet_hdr: bytes
    frame: bytes | memoryview  # a view of the decrypted message, valid as long as held


@dataclass(frozen=True)
class PeerDead:
    """No handshake succeeded for ``rekey_attempt_time``; queued frames were dropped."""

    peer: bytes


Event = (
    HandshakeCompleted
    | EndpointChanged
    | FramesReceived
    | FrameRowsReceived
    | SuperFrameReceived
    | PeerDead
)


@dataclass(frozen=True)
class Transmit:
    """Datagrams to send to ``addr``; see :class:`skylan.tunnel.session.Sealed`."""

    addr: Address
    buffers: list[bytes | memoryview]
    segment_size: int
    count: int

    def datagrams(self) -> list[bytes]:
        """One bytes object per datagram, for senders without GSO (and tests)."""
        flat = b"".join(self.buffers)
        if self.count == 1:
            return [flat]
        step = self.segment_size
        return [flat[i : i + step] for i in range(0, len(flat), step)]
