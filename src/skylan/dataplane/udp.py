"""The tunnel's UDP socket: GSO on send, GRO on receive.

A sealed super-frame leaves in one ``sendmsg`` with a ``UDP_SEGMENT`` control
message (the kernel cuts it into datagrams); received datagrams of one flow
arrive coalesced by ``UDP_GRO`` and are split again at the reported segment
size. Both fall back to one datagram per call where the kernel says no.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator, Sequence

SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104
RECV_BUF = 65536 * 2


class UdpSocket:
    def __init__(self, port: int, host: str = "0.0.0.0") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            self.sock.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.gso = True
        self.gro = True
        try:
            self.sock.setsockopt(SOL_UDP, UDP_GRO, 1)
        except OSError:
            self.gro = False
        self._buf = bytearray(RECV_BUF)
        self._view = memoryview(self._buf)
        self.send_errors = 0

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
        try:
            if count > 1 and self.gso:
                self.sock.sendmsg(
                    buffers, [(SOL_UDP, UDP_SEGMENT, struct.pack("H", segment_size))], 0, addr
                )
                return
            if count == 1:
                self.sock.sendmsg(buffers, [], 0, addr)
                return
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT) and count > 1:
                self.gso = False  # the path or kernel refuses GSO: fall back for good
            else:
                self.send_errors += 1
                return
        for i in range(0, len(buffers), 2):
            try:
                self.sock.sendmsg(buffers[i : i + 2], [], 0, addr)
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
        """What each ``recvmsg`` returned, until the socket is empty: a buffer of
        back-to-back datagrams of one size (the last may be shorter, as GRO
        coalesced them), that size, and the sender.

        Each memoryview is valid only until the next iteration.
        """
        while True:
            try:
                n, ancdata, _flags, addr = self.sock.recvmsg_into([self._buf], socket.CMSG_SPACE(4))
            except BlockingIOError:
                return
            except OSError:
                continue
            segment = n
            for level, kind, data in ancdata:
                if level == SOL_UDP and kind == UDP_GRO and len(data) >= 2:
                    segment = struct.unpack("H", data[:2])[0] or n
            yield self._view[:n], segment, addr

    def close(self) -> None:
        self.sock.close()
