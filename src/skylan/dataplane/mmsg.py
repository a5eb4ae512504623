"""``recvmmsg(2)``: many datagrams per system call.

Python's socket module has ``recvmsg`` but not ``recvmmsg``, and on a path
without GRO (no offload on the device, or a loss-measuring hook that needs it
off) a 64 KB super-frame arrives as ~46 datagrams: one ``recvmsg`` each cost
more than everything else the receiver does with them. This calls libc's
``recvmmsg`` through ctypes on buffers set up once and reads each message's
length, GRO segment size and sender through word views of those buffers
(cheaper than ctypes attribute access or numpy for a few dozen messages).
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from typing import Any

import numpy as np

SOL_UDP = 17
UDP_GRO = 104
MSG_DONTWAIT = 0x40
SLOT = 65536  # one GRO batch or datagram per slot: never truncated
GATHER_MAX_SEGMENT = 2048  # only datagrams up to a tunnel chunk's size are gathered
SOCKADDR_IN = 16
CONTROL = socket.CMSG_SPACE(4)  # room for one UDP_GRO control message


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("length", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    _fields_ = (("hdr", _MsgHdr), ("length", ctypes.c_uint))


def _libc_recvmmsg() -> Any:
    """libc's ``recvmmsg``, or None where the C library lacks it."""
    try:
        func = ctypes.CDLL(None, use_errno=True).recvmmsg
    except (AttributeError, OSError):
        return None
    func.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p)
    func.restype = ctypes.c_int
    return func


_RECVMMSG = _libc_recvmmsg()


class MessageBatch:
    """Up to ``slots`` datagrams (or GRO batches) from one ``recvmmsg`` call.

    After :meth:`receive` returns ``count``, slot ``i < count`` holds
    ``lengths[i]`` bytes (:meth:`payload`), coalesced at ``segments[i]``
    (its length when it is a single datagram), from sender ``senders[i]``
    (an opaque integer, equal for equal addresses; :meth:`address` turns it
    into ``(host, port)``). Everything is overwritten by the next call.
    """

    def __init__(self, fd: int, slots: int = 64) -> None:
        if _RECVMMSG is None:
            raise OSError("recvmmsg is not available in this C library")
        self.fd = fd
        self.slots = slots
        self._data = (ctypes.c_char * (SLOT * slots))()
        self._iov = (_IoVec * slots)()
        self._names = (ctypes.c_char * (SOCKADDR_IN * slots))()
        self._control = (ctypes.c_char * (CONTROL * slots))()
        self._msgs = (_MMsgHdr * slots)()
        data, names, control = (
            ctypes.addressof(b) for b in (self._data, self._names, self._control)
        )
        for i in range(slots):
            self._iov[i].base = data + i * SLOT
            self._iov[i].length = SLOT
            hdr = self._msgs[i].hdr
            hdr.name = names + i * SOCKADDR_IN
            hdr.iov = ctypes.addressof(self._iov) + i * ctypes.sizeof(_IoVec)
            hdr.iovlen = 1
            hdr.control = control + i * CONTROL
            hdr.namelen = SOCKADDR_IN
            hdr.controllen = CONTROL
        self.rows = np.frombuffer(_bytes(self._data), dtype=np.uint8).reshape(slots, SLOT)
        # where a reader gathers single datagrams into runs (see udp.UdpSocket)
        self.scratch = np.empty(slots * GATHER_MAX_SEGMENT, dtype=np.uint8)
        self.view = _bytes(self._data)
        # the same memory as arrays of words: a message's fields by index
        self._m32 = _bytes(self._msgs).cast("I")
        self._m64 = _bytes(self._msgs).cast("Q")
        self._c32 = _bytes(self._control).cast("I")
        self._c16 = _bytes(self._control).cast("H")
        self._n64 = _bytes(self._names).cast("Q")
        self._addresses: dict[int, tuple[str, int]] = {}
        self.lengths: list[int] = []
        self.segments: list[int] = []
        self.senders: list[int] = []

    def receive(self, fd: int | None = None) -> int:
        """Whatever the socket (``fd``, else the batch's own) holds, up to
        ``slots`` messages; 0 when empty. One batch may serve many sockets
        (a relay's), read one after the other."""
        assert _RECVMMSG is not None
        count = 0
        fd = self.fd if fd is None else fd
        for _ in range(8):
            count = _RECVMMSG(fd, self._msgs, self.slots, MSG_DONTWAIT, None)
            if count >= 0 or ctypes.get_errno() in (errno.EAGAIN, errno.EWOULDBLOCK):
                break
            # EINTR, or an error the socket had queued (an ICMP unreachable for
            # an earlier send): reported once, so the next call gets the data
            count = 0
        if count <= 0:
            self.lengths, self.segments, self.senders = [], [], []
            return 0
        m32, m64, c32, c16, names = self._m32, self._m64, self._c32, self._c16, self._n64
        lengths, segments, senders = [], [], []
        for i in range(count):
            n = m32[i * _MSG32 + _LENGTH]
            segment = n
            c = i * _CONTROL32
            if (
                m64[i * _MSG64 + _CONTROLLEN] >= _CMSG_DATA + 2
                and c32[c + _CMSG_LEVEL] == SOL_UDP
                and c32[c + _CMSG_TYPE] == UDP_GRO
            ):
                segment = c16[2 * c + _CMSG_DATA // 2] or n
            lengths.append(n)
            segments.append(segment)
            senders.append(names[2 * i])
            m32[i * _MSG32 + _NAMELEN] = SOCKADDR_IN  # the kernel wrote the used sizes here
            m64[i * _MSG64 + _CONTROLLEN] = CONTROL
        self.lengths, self.segments, self.senders = lengths, segments, senders
        return count

    def payload(self, i: int) -> memoryview:
        return self.view[i * SLOT : i * SLOT + self.lengths[i]]

    def address(self, sender: int) -> tuple[str, int]:
        """``(host, port)`` of a sender seen in :attr:`senders`."""
        found = self._addresses.get(sender)
        if found is None:
            raw = struct.pack("=Q", sender)  # family, port (network order), IPv4
            found = (socket.inet_ntoa(raw[4:8]), int.from_bytes(raw[2:4], "big"))
            if len(self._addresses) > 4096:  # a scan of many sources: do not grow
                self._addresses.clear()
            self._addresses[sender] = found
        return found


# field positions in units of the word views (the 64-bit Linux layout, which the
# assertion below checks)
_NAMELEN = _MsgHdr.namelen.offset // 4
_CONTROLLEN = _MsgHdr.controllen.offset // 8
_LENGTH = _MMsgHdr.length.offset // 4
_MSG32 = ctypes.sizeof(_MMsgHdr) // 4
_MSG64 = ctypes.sizeof(_MMsgHdr) // 8
_CONTROL32 = CONTROL // 4
_CMSG_LEVEL = 2  # struct cmsghdr: size_t len, int level, int type, data
_CMSG_TYPE = 3
_CMSG_DATA = 16
assert ctypes.sizeof(_MMsgHdr) % 8 == 0 and _MsgHdr.controllen.offset % 8 == 0


def _bytes(block: ctypes.Array[Any]) -> memoryview:
    """A ctypes block as plain bytes (its own buffer format is a struct's)."""
    return memoryview(block).cast("B")
