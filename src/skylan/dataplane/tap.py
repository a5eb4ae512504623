"""TAP devices with virtio-net headers and offloads.

Opened with ``IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`` and TSO/checksum offloads,
one read returns a whole TCP super-frame (up to 64 KB) behind a 10-byte
``virtio_net_hdr``; writing the same header back on the other side lets the
receiving kernel finish segmentation and checksums. Where an offload is
refused the device still works, frame by frame, and says so.
"""

from __future__ import annotations

import fcntl
import io
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
IFF_TAP = 0x0002
IFF_MULTI_QUEUE = 0x0100
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40
VNET_HDR_LEN = 10
ZERO_VNET_HDR = bytes(VNET_HDR_LEN)
MAX_READ = 65536 + VNET_HDR_LEN + 64


@dataclass
class TapDevice:
    name: str
    fd: int
    offloads: list[str] = field(default_factory=list)
    fallback: str | None = None  # why an offload is off, for `skylan status`
    # whether the kernel takes UDP GSO frames (Linux 6.2+): bursts of small UDP
    # datagrams are then written as one frame (see udpcoalesce)
    udp_gso: bool = False
    # read_into(buf) -> bytes read, or None when nothing is waiting: one frame
    # (vnet header + frame) into ``buf`` (at least ``MAX_READ`` bytes), so the
    # fast path reads a super-frame straight into the buffer it is sealed from.
    # It is a FileIO's readinto on the same fd, called directly: it returns
    # None on an empty queue instead of raising, and there is no Python frame
    # in between, which matters once per small frame
    read_into: Callable[[memoryview], int | None] = field(init=False, repr=False)
    _reader: io.FileIO = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._reader = io.FileIO(self.fd, "rb", closefd=False)
        self.read_into = self._reader.readinto

    @classmethod
    def open(cls, name: str, *, multi_queue: bool = False) -> TapDevice:
        """Create the TAP, or with ``multi_queue`` create it or add a queue to
        it: each worker lane opens its own queue of the same device, and the
        kernel spreads flows over the queues by hash (and sends a flow's
        replies to the queue that wrote it)."""
        if len(name.encode()) > 15:
            raise ValueError(f"interface name {name!r} is longer than 15 bytes")
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (IFF_MULTI_QUEUE if multi_queue else 0)
        try:
            ifr = struct.pack("16sH", name.encode(), flags)
            fcntl.ioctl(fd, TUNSETIFF, ifr)
            fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
        except OSError:
            os.close(fd)
            raise
        dev = cls(name, fd)
        dev._enable_offloads()
        return dev

    def _enable_offloads(self) -> None:
        wanted = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN
        try:
            # a kernel that lets the TAP offer UDP segmentation also takes UDP
            # GSO frames written to it. Offering it is left off: the kernel would
            # then hand us GSO frames for peers whose kernels may not take them
            fcntl.ioctl(self.fd, TUNSETOFFLOAD, wanted | TUN_F_USO4 | TUN_F_USO6)
            self.udp_gso = True
        except OSError:
            self.udp_gso = False
        try:
            fcntl.ioctl(self.fd, TUNSETOFFLOAD, wanted)
            self.offloads = ["csum", "tso4", "tso6"]
        except OSError as exc:
            try:
                fcntl.ioctl(self.fd, TUNSETOFFLOAD, TUN_F_CSUM)
                self.offloads = ["csum"]
            except OSError:
                self.offloads = []
            self.fallback = f"TSO unavailable ({exc.strerror}); frames are sent one by one"

    def write(self, vnet_hdr: bytes | memoryview, frame: bytes | memoryview) -> bool:
        try:
            os.writev(self.fd, [vnet_hdr, frame])
        except (BlockingIOError, OSError):
            return False  # queue full or a frame the kernel refuses: dropped
        return True

    def close(self) -> None:
        if self.fd >= 0:
            self._reader.close()  # closefd=False: only marks it closed
            os.close(self.fd)
            self.fd = -1
