"""A transport session: one pair of AES-256-GCM keys from one handshake.

Sealing encrypts a whole container (one Ethernet frame, a batch, or a 64 KB
TSO super-frame) with a single AEAD call, then cuts the ciphertext into
UDP-sized chunks that share the one tag, laid out (see
:mod:`skylan.tunnel.segments`) so that one ``sendmsg`` with ``UDP_SEGMENT``
(GSO) emits every chunk: each segment is a 16-byte header followed by its
slice of ciphertext.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from skylan.model.counters import DropCounters
from skylan.tunnel import segments
from skylan.tunnel.noise import TAGLEN, aesgcm_nonce
from skylan.tunnel.reassembly import Reassembler
from skylan.tunnel.replay import ReplayWindow
from skylan.tunnel.wire import (
    DATA_HDR,
    DATA_HDR_LEN,
    MAX_CHUNKS,
    DataHeader,
    MsgType,
    fec_groups,
)

REJECT_AFTER_MESSAGES = 2**64 - 2**13 - 1
REKEY_AFTER_MESSAGES = 2**60
LAY_OUT_FROM = 8  # chunks from which numpy's fixed cost pays off


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
    copy: bytes | None = None  # a redundant datagram to send on its own


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
        self.send_key = send_key
        self.recv_key = recv_key
        self._send = AESGCM(send_key)
        self._recv = AESGCM(recv_key)
        self.send_counter = 0
        # Set while a compiled data-plane core also seals with this key: it
        # owns the counter then, and every seal here takes the next one from
        # it, so no counter is ever used twice under one key.
        self.counter_source: Callable[[], int] | None = None
        self._scratch: segments.Bytes = np.empty(0, np.uint8)  # ciphertext before lay-out
        self.replay = ReplayWindow()
        self.reassembly = Reassembler(drops, timeout=reassembly_timeout)
        self._drops = drops

    def age(self, now: float) -> float:
        return now - self.created

    # -- sending ------------------------------------------------------------

    def seal(
        self, plaintext: bytes | bytearray | memoryview, chunk_size: int, *, fec: bool = False
    ) -> Sealed:
        """Encrypt ``plaintext`` once and cut it into chunks of ``chunk_size``.

        ``chunk_size`` is the ciphertext carried per datagram (the datagram is
        16 bytes longer). A large message comes back as one contiguous GSO
        buffer, a small one as header and ciphertext views in turn. With
        ``fec`` a message of three chunks or more also carries parity chunks
        and a copy of its last chunk, so that a lossy path loses one datagram
        without losing the message (see :func:`wire.fec_groups`).
        """
        if self.send_counter >= REJECT_AFTER_MESSAGES:
            raise SessionError("message counter exhausted")
        total = len(plaintext) + TAGLEN
        count = -(-total // chunk_size)
        if count > MAX_CHUNKS:
            raise ValueError(f"{len(plaintext)} bytes need more than {MAX_CHUNKS} chunks")
        counter = self.send_counter if self.counter_source is None else self.counter_source()
        self.send_counter = counter + 1
        header = DATA_HDR.pack(MsgType.DATA.value, 0, 0, count, self.remote_index, counter)
        size = total + DATA_HDR_LEN * count
        groups = fec_groups(count) if fec else 0
        if count < LAY_OUT_FROM and not groups:  # cheaper as a list of views than in numpy
            out = memoryview(bytearray(total))
            self._send.encrypt_into(aesgcm_nonce(counter), plaintext, header, out)
            buffers: list[bytes | memoryview] = [header, out[:chunk_size]]
            for i in range(1, count):
                buffers.append(
                    DATA_HDR.pack(MsgType.DATA.value, 0, i, count, self.remote_index, counter)
                )
                buffers.append(out[i * chunk_size : (i + 1) * chunk_size])
            return Sealed(buffers, DATA_HDR_LEN + chunk_size, count, size)
        if len(self._scratch) < total:
            self._scratch = np.empty(max(total, 1 << 16), np.uint8)
        ciphertext = self._scratch[:total]
        self._send.encrypt_into(aesgcm_nonce(counter), plaintext, header, ciphertext.data)
        if not groups:
            flat = segments.lay_out(header, ciphertext, chunk_size)
            return Sealed([flat.data], DATA_HDR_LEN + chunk_size, count, size)
        flat, copy = segments.lay_out_fec(header, ciphertext, chunk_size, groups)
        size += groups * (DATA_HDR_LEN + chunk_size) + len(copy)
        return Sealed([flat.data], DATA_HDR_LEN + chunk_size, count + groups, size, copy)

    # -- receiving ----------------------------------------------------------

    def open(self, header: DataHeader, chunk: bytes | memoryview, now: float) -> bytes | None:
        """Authenticate and decrypt; None (and a counted drop) if refused."""
        if not self.replay.check(header.counter):
            if self.reassembly.was_rescued(header.counter):
                self.reassembly.spares += 1  # parity rebuilt it before it came
            else:
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

    def open_redundant(
        self, header: DataHeader, chunk: bytes | memoryview, now: float
    ) -> bytes | None:
        """A parity chunk or a copy of a last chunk: it may complete a message."""
        if not self.replay.check(header.counter):
            self.reassembly.spares += 1  # the message is in already: not needed
            return None
        whole = self.reassembly.add_redundant(
            header.counter, header.chunk_count, header.chunk_index, chunk, now
        )
        return None if whole is None else self.decrypt(header, whole)

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
