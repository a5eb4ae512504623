"""The tunnel's UDP socket: GSO on send, GRO on receive.

A sealed super-frame leaves in one ``sendmsg`` with a ``UDP_SEGMENT`` control
message (the kernel cuts it into datagrams); received datagrams of one flow
arrive coalesced by ``UDP_GRO``, many per ``recvmmsg``, and are split again at
the reported segment size. Sending falls back to one datagram per call where
the kernel refuses GSO; without GRO, single datagrams are gathered into runs.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator, Sequence

from skylan.dataplane.mmsg import GATHER_MAX_SEGMENT, SOL_UDP, UDP_GRO, MessageBatch
from skylan.dataplane.tunnelporterror import TunnelPortError

UDP_SEGMENT = 103
SOFT_GRO_MAX_SEGMENT = GATHER_MAX_SEGMENT
MAX_UDP_PAYLOAD = 65507  # an IPv4 packet's 65535 bytes less the IP and UDP headers


class UdpSocket:
    def __init__(
        self, port: int, host: str = "0.0.0.0", *, batch: MessageBatch | None = None
    ) -> None:
        """``batch``: receive buffers shared with other sockets (a relay's
        thousands of ports), instead of 4 MB of its own."""
        # No SO_REUSEADDR: on UDP it lets a second socket bind the same port
        # (even one the kernel picks for port 0) and silently take its traffic.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            self.sock.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise TunnelPortError(host, port, exc.errno or 0, exc.strerror or str(exc)) from None
        self.sock.setblocking(False)
        self.gso = True
        self.gro = True
        try:
            self.sock.setsockopt(SOL_UDP, UDP_GRO, 1)
        except OSError:
            self.gro = False
        self._batch = batch or MessageBatch(self.sock.fileno())
        self._runs = self._batch.scratch
        self._runs_view = self._runs.data
        self.send_errors = 0

    @property
    def batch(self) -> MessageBatch:
        """Its receive buffers, for other sockets to share."""
        return self._batch

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(
        self,
        buffers: Sequence[bytes | memoryview],
        segment_size: int,
        count: int,
        addr: tuple[str, int],
    ) -> None:
        """Send ``count`` datagrams whose concatenation is ``buffers``.

        A GSO send is one IP packet until the kernel cuts it, so at most
        64 KB go per ``sendmsg``: a full super-frame with its chunk headers
        can be a little more, and then leaves in two.
        """
        if count == 1:
            self._send_one(buffers, addr)
            return
        flat = memoryview(buffers[0] if len(buffers) == 1 else b"".join(buffers))
        start = 0
        if self.gso:
            step = max(1, MAX_UDP_PAYLOAD // segment_size) * segment_size
            cmsg = [(SOL_UDP, UDP_SEGMENT, struct.pack("H", segment_size))]
            for start in range(0, len(flat), step):
                part = flat[start : start + step]
                try:
                    self.sock.sendmsg([part], cmsg if len(part) > segment_size else [], 0, addr)
                except OSError as exc:
                    if exc.errno not in (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT):
                        self.send_errors += 1
                        continue
                    self.gso = False  # the path or kernel refuses GSO: fall back for good
                    break
            else:
                return
        for off in range(start, len(flat), segment_size):
            self._send_one([flat[off : off + segment_size]], addr)

    def _send_one(self, buffers: Sequence[bytes | memoryview], addr: tuple[str, int]) -> None:
        try:
            self.sock.sendmsg(buffers, [], 0, addr)
        except OSError:
            self.send_errors += 1

    def receive(self) -> Iterator[tuple[memoryview, tuple[str, int]]]:
        """Datagrams waiting on the socket (GRO batches split), until empty.

        Each memoryview is valid only until the next iteration.
        """
        for batch, segment, addr in self.receive_batches():
            n = len(batch)
            for off in range(0, n, segment):
                yield batch[off : min(off + segment, n)], addr

    def receive_batches(self) -> Iterator[tuple[memoryview, int, tuple[str, int]]]:
        """What the socket holds, until it is empty: buffers of back-to-back
        datagrams of one size from one sender (the last may be shorter), that
        size, and the sender.

        The kernel's UDP GRO coalesces datagrams like that where the NIC path
        does GRO. Where it does not (no GRO on the device, a lossy path's
        stragglers), single datagrams that one ``recvmmsg`` returned back to
        back are gathered the same way here, into one buffer, so the engine
        still takes them as a run instead of one at a time.

        Each memoryview is valid only until the next iteration.
        """
        batch, fd = self._batch, self.sock.fileno()
        while True:
            count = batch.receive(fd)
            lengths, segments, senders = batch.lengths, batch.segments, batch.senders
            i = 0
            while i < count:
                n, sender = lengths[i], senders[i]
                end = i + 1
                if segments[i] == n <= SOFT_GRO_MAX_SEGMENT:
                    while (
                        end < count
                        and senders[end] == sender
                        and segments[end] == lengths[end] <= n
                    ):
                        end += 1
                        if lengths[end - 1] < n:  # a shorter one ends a run, as with GRO
                            break
                if end == i + 1:
                    yield batch.payload(i), segments[i], batch.address(sender)
                else:
                    yield self._gather(batch, i, end, n), n, batch.address(sender)
                i = end
            if count < batch.slots:
                return  # drained: the next readiness wake-up brings the rest

    def _gather(self, batch: MessageBatch, start: int, end: int, size: int) -> memoryview:
        """Slots ``start:end`` (all ``size`` long but maybe the last) back to back."""
        whole = end - start if batch.lengths[end - 1] == size else end - start - 1
        flat = self._runs
        flat[: whole * size].reshape(whole, size)[:] = batch.rows[start : start + whole, :size]
        total = whole * size
        if whole < end - start:
            last = batch.lengths[end - 1]
            flat[total : total + last] = batch.rows[end - 1, :last]
            total += last
        return self._runs_view[:total]

    def close(self) -> None:
        self.sock.close()
