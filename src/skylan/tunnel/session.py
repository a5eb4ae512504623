"""A transport session: one pair of AES-256-GCM keys from one handshake.

Sealing encrypts a whole container (one Ethernet frame, a batch, or a 64 KB
TSO super-frame) with a single AEAD call into a reusable buffer, then cuts
the ciphertext into UDP-sized chunks that share the one tag. The result is a
list of memoryviews laid out so that one ``sendmsg`` with ``UDP_SEGMENT``
(GSO) emits every chunk: each segment is a 16-byte header followed by its
slice of ciphertext.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from skylan.model.counters import DropCounters
from skylan.tunnel.noise import TAGLEN, aesgcm_nonce
from skylan.tunnel.reassembly import Reassembler
from skylan.tunnel.replay import ReplayWindow
from skylan.tunnel.wire import DATA_HDR, DATA_HDR_LEN, MAX_CHUNKS, DataHeader, MsgType

REJECT_AFTER_MESSAGES = 2**64 - 2**13 - 1
REKEY_AFTER_MESSAGES = 2**60


class SessionError(Exception):
    """The session may not send any more (key too old or counter exhausted)."""


@dataclass
class Sealed:
    """Datagrams ready to send.

    ``buffers`` concatenated is the GSO send buffer: ``count`` segments of
    ``segment_size`` bytes (the last may be shorter).
    """

    buffers: list[bytes | memoryview]
    segment_size: int
    count: int
    size: int  # bytes on the wire (headers included), for the counters

    def datagrams(self) -> list[bytes]:
        """One bytes object per datagram, for senders without GSO."""
        return [
            bytes(self.buffers[i]) + bytes(self.buffers[i + 1])
            for i in range(0, len(self.buffers), 2)
        ]


class Session:
    def __init__(
        self,
        *,
        local_index: int,
        remote_index: int,
        send_key: bytes,
        recv_key: bytes,
        created: float,
        initiator: bool,
        drops: DropCounters,
        reassembly_timeout: float = 0.5,
    ) -> None:
        self.local_index = local_index
        self.remote_index = remote_index
        self.created = created
        self.initiator = initiator
        # The responder may not send until the initiator's first data proves
        # the initiator holds the keys too (no confirmation, no use).
        self.confirmed = initiator
        self._send = AESGCM(send_key)
        self._recv = AESGCM(recv_key)
        self.send_counter = 0
        self.replay = ReplayWindow()
        self.reassembly = Reassembler(drops, timeout=reassembly_timeout)
        self._drops = drops

    def age(self, now: float) -> float:
        return now - self.created

    # -- sending ------------------------------------------------------------

    def seal(
        self,
        plaintext: bytes | bytearray | memoryview,
        chunk_size: int,
        buf: bytearray | None = None,
    ) -> Sealed:
        """Encrypt ``plaintext`` once and cut it into chunks of ``chunk_size``.

        ``chunk_size`` is the ciphertext carried per datagram (the datagram is
        16 bytes longer). With ``buf`` the ciphertext is written there (the
        fast path reuses its buffers; the result is valid until ``buf`` is
        reused), otherwise into a new buffer.
        """
        if self.send_counter >= REJECT_AFTER_MESSAGES:
            raise SessionError("message counter exhausted")
        counter = self.send_counter
        self.send_counter += 1
        total = len(plaintext) + TAGLEN
        count = -(-total // chunk_size)
        if count > MAX_CHUNKS:
            raise ValueError(f"{len(plaintext)} bytes need more than {MAX_CHUNKS} chunks")
        header = DataHeader(0, count, self.remote_index, counter)
        out = memoryview(buf if buf is not None else bytearray(total))[:total]
        self._send.encrypt_into(aesgcm_nonce(counter), plaintext, header.aad(), out)
        buffers: list[bytes | memoryview] = []
        pack, kind, remote = DATA_HDR.pack, MsgType.DATA.value, self.remote_index
        for i in range(count):  # the header of DataHeader(i, …).encode(), inlined: hot loop
            buffers.append(pack(kind, 0, i, count, remote, counter))
            buffers.append(out[i * chunk_size : min((i + 1) * chunk_size, total)])
        return Sealed(buffers, DATA_HDR_LEN + chunk_size, count, total + DATA_HDR_LEN * count)

    # -- receiving ----------------------------------------------------------

    def open(self, header: DataHeader, chunk: bytes | memoryview, now: float) -> bytes | None:
        """Authenticate and decrypt; None (and a counted drop) if refused."""
        if not self.replay.check(header.counter):
            self._drops.add("replay")
            return None
        if header.chunk_count > 1:
            whole = self.reassembly.add(
                header.counter, header.chunk_index, header.chunk_count, chunk, now
            )
            if whole is None:
                return None
            chunk = whole
        return self.decrypt(header, chunk)

    def decrypt(self, header: DataHeader, ciphertext: bytes | memoryview) -> bytes | None:
        """The whole (reassembled) message: authenticate, then mark its counter seen."""
        if len(ciphertext) < TAGLEN:
            self._drops.add("short_ciphertext")
            return None
        try:
            plaintext = self._recv.decrypt(aesgcm_nonce(header.counter), ciphertext, header.aad())
        except InvalidTag:
            self._drops.add("auth_failed")
            return None
        if not self.replay.accept(header.counter):
            self._drops.add("replay")
            return None
        self.confirmed = True
        return plaintext
