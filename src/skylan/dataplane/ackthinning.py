"""Pure TCP ACKs that a later ACK in the same batch makes redundant.

A node receiving a bulk TCP stream sends about one ACK per super-frame it
gets, and the sending agent reads them from its TAP several per pass: each
costs the peer's agent a trip through its receive path and a TAP write, and
the peer's kernel a pass of ``tcp_ack`` — for information that the next ACK
in the same batch repeats, since ACKs are cumulative. Dropping such ACKs
before they are sealed ("ACK thinning", as sch_cake's ``ack-filter`` does on
slow uplinks) frees that CPU for the data; on this machine one stream goes
about a tenth faster.

Only what carries no information of its own is dropped, and conservatively
(sch_cake's rules, without its "aggressive" mode): an ACK goes only if a
later ACK of the same connection in the same batch acknowledges strictly
more, with no smaller window, and nothing but ACKs of that connection lie
between them. Both must be pure ACKs: no payload, no flag but ACK (so no
SYN/FIN/RST/URG/PSH/ECE/CWR), no CE mark, no IP fragment, and no TCP option
but NOP and timestamps, so SACK blocks are never lost. Duplicate ACKs
(equal numbers) all stay: they drive fast retransmit. Anything that does not
parse as IPv4 or IPv6 TCP passes untouched.
"""

from __future__ import annotations

from skylan.switch import frames
from skylan.switch.frames import ETH_HEADER
from skylan.tunnel.wire import VnetItem

ETHERTYPE_IPV4 = frames.ETHERTYPE_IPV4.to_bytes(2, "big")
ETHERTYPE_IPV6 = frames.ETHERTYPE_IPV6.to_bytes(2, "big")
PROTO_TCP = 6
TCP_HEADER = 20
ACK_ONLY = 0x10  # the flags byte of a pure ACK
ECN_CE = 3
OPT_END, OPT_NOP, OPT_TIMESTAMP, TIMESTAMP_LEN = 0, 1, 8, 10
HALF_SEQ_SPACE = 1 << 31
MIN_TCP_FRAME = ETH_HEADER + 20 + TCP_HEADER
IPV4_PROTO = ETH_HEADER + 9  # where a frame's IP protocol is, in IPv4
IPV6_NEXT = ETH_HEADER + 6  # and in IPv6
SEQ_MASK = 0xFFFFFFFF


def thin_acks(items: list[VnetItem]) -> list[VnetItem]:
    """``items`` in order without the ACKs a later one in the list supersedes."""
    # one cheap pass first: most batches of small frames hold no TCP at all
    # (a burst of UDP) or one ACK, and cost no more than this
    candidates = [i for i, (_, frame) in enumerate(items) if _maybe_tcp(frame)]
    if len(candidates) < 2:
        return items
    later: dict[bytes, tuple[int, int]] = {}  # connection -> (ack, window) of the next pure ACK
    dropped: set[int] = set()
    for i in reversed(candidates):  # from the newest back
        parsed = _tcp(items[i][1])
        if parsed is None:
            continue
        conn, ack_window = parsed
        if ack_window is None:  # not a pure ACK: earlier ACKs must not skip over it
            later.pop(conn, None)
            continue
        ack, window = ack_window
        newer = later.get(conn)
        if newer is not None and _supersedes(newer, ack, window):
            dropped.add(i)  # the newer ACK stays the one to compare with
            continue
        later[conn] = ack_window
    if not dropped:
        return items
    return [item for i, item in enumerate(items) if i not in dropped]


def ends_in_tcp(items: list[VnetItem]) -> bool:
    """Whether the last frame is a TCP segment: a batch of ACKs read in one
    pass always is, a burst of UDP datagrams is not (and costs one check)."""
    return _maybe_tcp(items[-1][1])


def _maybe_tcp(frame: bytes | bytearray) -> bool:
    """IPv4 or IPv6 with TCP as its protocol; everything else can neither be
    thinned nor stand between two ACKs of a connection."""
    if len(frame) < MIN_TCP_FRAME:
        return False
    if frame[IPV4_PROTO] == PROTO_TCP and frame[12:14] == ETHERTYPE_IPV4:
        return True
    return frame[IPV6_NEXT] == PROTO_TCP and frame[12:14] == ETHERTYPE_IPV6


def _supersedes(newer: tuple[int, int], ack: int, window: int) -> bool:
    advance = (newer[0] - ack) & SEQ_MASK
    return 0 < advance < HALF_SEQ_SPACE and newer[1] >= window


def _tcp(frame: bytes | bytearray) -> tuple[bytes, tuple[int, int] | None] | None:
    """The TCP connection (addresses, ports and MACs) of a frame that
    :func:`_maybe_tcp` accepted and, for a pure ACK, its (ack number, raw
    window); None if its headers do not hold together."""
    if frame[12:14] == ETHERTYPE_IPV4:
        ihl = (frame[ETH_HEADER] & 0x0F) * 4
        if frame[ETH_HEADER] >> 4 != 4 or ihl < 20:
            return None
        tcp = ETH_HEADER + ihl
        addresses = frame[ETH_HEADER + 12 : ETH_HEADER + 20]
        ip_payload = int.from_bytes(frame[ETH_HEADER + 2 : ETH_HEADER + 4], "big") - ihl
        ecn = frame[ETH_HEADER + 1] & 3
        fragment = frame[ETH_HEADER + 6] & 0x3F or frame[ETH_HEADER + 7]
    else:  # IPv6, with TCP right behind the fixed header (so no extension headers)
        tcp = ETH_HEADER + 40
        addresses = frame[ETH_HEADER + 8 : ETH_HEADER + 40]
        ip_payload = int.from_bytes(frame[ETH_HEADER + 4 : ETH_HEADER + 6], "big")
        ecn = (frame[ETH_HEADER + 1] >> 4) & 3
        fragment = 0
    if len(frame) < tcp + TCP_HEADER or fragment:
        return None
    conn = bytes(frame[:12]) + bytes(addresses) + bytes(frame[tcp : tcp + 4])
    offset = (frame[tcp + 12] >> 4) * 4
    pure = (
        frame[tcp + 13] == ACK_ONLY
        and offset >= TCP_HEADER
        and ip_payload == offset  # no payload
        and len(frame) >= tcp + offset
        and ecn != ECN_CE
        and _only_timestamps(frame, tcp + TCP_HEADER, tcp + offset)
    )
    if not pure:
        return conn, None
    ack = int.from_bytes(frame[tcp + 8 : tcp + 12], "big")
    window = int.from_bytes(frame[tcp + 14 : tcp + 16], "big")
    return conn, (ack, window)


def _only_timestamps(frame: bytes | bytearray, start: int, end: int) -> bool:
    """Whether the options hold nothing but padding and timestamps (which
    a newer ACK carries newer values of)."""
    i = start
    while i < end:
        kind = frame[i]
        if kind == OPT_END:
            return True
        if kind == OPT_NOP:
            i += 1
        elif kind == OPT_TIMESTAMP and i + TIMESTAMP_LEN <= end and frame[i + 1] == TIMESTAMP_LEN:
            i += TIMESTAMP_LEN
        else:
            return False
    return True
