"""Runs of small UDP datagrams merged into one GSO frame for the TAP.

A burst of small UDP packets (VoIP, DNS, games, iperf3 -l 64) reaches the
receiving agent as a batch of frames, and writing them to the TAP one by one
costs a system call and a trip up the kernel's stack each (the receiver of
such a burst spends most of its time there). A TAP accepts a UDP
segmentation-offload frame (``VIRTIO_NET_HDR_GSO_UDP_L4``, Linux 6.2+): one
IPv4/UDP header and many equal-sized payloads, which the kernel cuts back into
the original datagrams. Writing a run of same-flow datagrams that way costs one
write and one pass of the IP layer; the socket still gets each datagram.

Only what the kernel can restore exactly is merged: IPv4 without options or
fragmentation, the same addresses, ports, TOS, TTL and DF bit, payloads of one
size (the last may be shorter), and checksums left to offload (the frames came
from a TAP that handed them over with ``NEEDS_CSUM``), so the kernel would have
trusted them anyway. The IP identification of the first datagram is kept and
the kernel numbers the rest from it. Everything else passes through as it is.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from skylan.switch.frames import ETH_HEADER as ETH_LEN
from skylan.switch.frames import ETHERTYPE_IPV4
from skylan.tunnel.framerows import ROW_HEAD, FrameRows

VNET_F_NEEDS_CSUM = 1
VNET_GSO_UDP_L4 = 5
IP_LEN = 20
UDP_LEN = 8
HEADERS = ETH_LEN + IP_LEN + UDP_LEN  # 42
CSUM_START = ETH_LEN + IP_LEN  # 34
CSUM_OFFSET = 6  # udphdr.check
MAX_SEGMENTS = 64  # the kernel's UDP GSO limit is 64 on older kernels, 128 on newer
MAX_PAYLOAD = 0xFFFF - IP_LEN - UDP_LEN

_VNET = struct.Struct("=BBHHHH")  # virtio_net_hdr (legacy: native byte order)
# the vnet header of a frame that may be merged: checksum left to offload at
# the UDP checksum, no GSO (checked as bytes, which is cheaper than unpacking;
# a header of any other length fails one of the two comparisons)
_MERGEABLE_VNET = bytes((VNET_F_NEEDS_CSUM, 0))
_NEEDS_CSUM_UDP_TAIL = struct.pack("=HH", CSUM_START, CSUM_OFFSET)
_IPV4 = ETHERTYPE_IPV4.to_bytes(2, "big")

# what may differ between two datagrams of one flow and one size: the IP
# identification, the IP header checksum and the UDP checksum (frame offsets);
# every other byte of the vnet and Ethernet/IPv4/UDP headers must match
_FREE_BYTES = (18, 19, 24, 25, 40, 41)
_ROW_MASK = np.ones(ROW_HEAD + HEADERS, bool)
_ROW_MASK[[ROW_HEAD + k for k in _FREE_BYTES]] = False

Frame = tuple[bytes, bytes | memoryview]  # (virtio_net_hdr, Ethernet frame)
Write = tuple[bytes, bytes | memoryview, int]  # a Frame and how many datagrams it holds


def _flow(vnet: bytes, frame: bytes | memoryview) -> bytes | None:
    """The bytes that must match for two datagrams to share a GSO frame, or
    None if this frame cannot be merged at all."""
    if len(frame) <= HEADERS or vnet[6:] != _NEEDS_CSUM_UDP_TAIL or vnet[:2] != _MERGEABLE_VNET:
        return None
    head = bytes(frame[:HEADERS])
    if head[23] != 17 or head[14] != 0x45 or head[12:14] != _IPV4:
        return None  # not IPv4 without options, or not UDP
    if head[20] & 0x3F or head[21]:  # more fragments, or a fragment offset
        return None
    total = (head[16] << 8) | head[17]
    if total != len(frame) - ETH_LEN or (head[38] << 8) | head[39] != total - IP_LEN:
        return None  # padded, truncated or inconsistent lengths: leave it alone
    # MACs, EtherType and TOS; DF, TTL and protocol; addresses and ports
    return head[:16] + head[20:24] + head[26:38]


def coalesce(frames: Sequence[Frame]) -> list[Write]:
    """``frames`` in order, with every run of two or more mergeable datagrams
    of one flow replaced by one GSO frame; each with its datagram count."""
    out: list[Write] = []
    flows = [_flow(vnet, frame) for vnet, frame in frames]  # each frame's, once
    i, n = 0, len(frames)
    while i < n:
        vnet, frame = frames[i]
        flow = flows[i]
        j = i + 1
        if flow is not None:
            size = len(frame) - HEADERS
            total = size
            while j < n and j - i < MAX_SEGMENTS:
                nsize = len(frames[j][1]) - HEADERS
                if nsize > size or total + nsize > MAX_PAYLOAD or flows[j] != flow:
                    break
                total += nsize
                j += 1
                if nsize < size:
                    break  # a shorter datagram can only be the last segment
        if j - i < 2:
            out.append((vnet, frame, 1))
        else:
            out.append((*_merge(frames[i:j], size, total), j - i))
        i = j
    return out


def coalesce_rows(rows: FrameRows) -> list[Write] | None:
    """What :func:`coalesce` makes of ``rows.items()`` when every frame is a
    mergeable datagram of one flow, found and built on the whole batch at
    once; None when they are not (the caller then coalesces frame by frame)."""
    first = rows.frame(0)
    if _flow(rows.vnet_hdr(0), first) is None:
        return None
    array = rows.array
    head = array[:, : ROW_HEAD + HEADERS]
    if not (head == head[0])[:, _ROW_MASK].all():
        return None
    size = rows.frame_len - HEADERS
    per = min(MAX_SEGMENTS, MAX_PAYLOAD // size)
    if per < 2:
        return None
    payloads = array[:, ROW_HEAD + HEADERS :]
    out: list[Write] = []
    for i in range(0, len(rows), per):
        j = min(i + per, len(rows))
        if j - i == 1:
            out.append((rows.vnet_hdr(i), rows.frame(i), 1))
            continue
        vnet, header = _merged_header(rows.frame(i), size, (j - i) * size)
        out.append((vnet, header + payloads[i:j].tobytes(), j - i))
    return out


def _merge(run: Sequence[Frame], size: int, payload: int) -> Frame:
    vnet, header = _merged_header(run[0][1], size, payload)
    return vnet, b"".join([header, *(f[HEADERS:] for _, f in run)])


def _merged_header(first: bytes | memoryview, size: int, payload: int) -> tuple[bytes, bytes]:
    """The virtio header and the Ethernet/IPv4/UDP headers of a GSO frame of
    ``payload`` bytes in segments of ``size``, made from its first datagram's."""
    head = bytearray(first[:HEADERS])
    struct.pack_into("!H", head, ETH_LEN + 2, IP_LEN + UDP_LEN + payload)  # IP total length
    head[ETH_LEN + 10 : ETH_LEN + 12] = b"\0\0"
    struct.pack_into("!H", head, ETH_LEN + 10, 0xFFFF - _sum16(head[ETH_LEN:CSUM_START]))
    udp_len = UDP_LEN + payload
    struct.pack_into("!H", head, CSUM_START + 4, udp_len)
    # with the checksum left to offload, the UDP check field holds the
    # pseudo-header sum, now of the merged length; the kernel adjusts it for
    # each segment it cuts
    pseudo = bytes(head[ETH_LEN + 12 : CSUM_START]) + struct.pack("!HH", 17, udp_len)
    struct.pack_into("!H", head, CSUM_START + 6, _sum16(pseudo))
    vnet = _VNET.pack(VNET_F_NEEDS_CSUM, VNET_GSO_UDP_L4, HEADERS, size, CSUM_START, CSUM_OFFSET)
    return vnet, bytes(head)


def _sum16(data: bytes | bytearray) -> int:
    """The folded one's-complement sum of big-endian 16-bit words."""
    total = sum((data[k] << 8) | data[k + 1] for k in range(0, len(data) - 1, 2))
    if len(data) % 2:
        total += data[-1] << 8
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total
