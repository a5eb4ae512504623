"""Which lanes of two nodes talk to each other.

A node runs ``lanes`` worker lanes, each with its own TAP queue, UDP port
(``listen_port + lane``), identity and tunnel engine. The kernel picks the
TAP queue of an outgoing flow, so lane ``j`` must be able to reach every peer:
it sends to the peer's lane ``j mod peer_lanes``. That is a total rule even
when the two nodes run different numbers of lanes, and the peer's lanes send
back by the same rule, so lane ``j`` keeps tunnels with the peer lane it sends
to and with every peer lane that sends to it. The relation is symmetric, so
both ends of every tunnel know about it.
"""

from __future__ import annotations


def send_lane(lane: int, peer_lanes: int) -> int:
    """The peer lane that our lane ``lane`` sends frames to."""
    return lane % peer_lanes


def paired_lanes(lane: int, lanes: int, peer_lanes: int) -> list[int]:
    """The peer lanes our lane ``lane`` (of ``lanes``) keeps tunnels with."""
    if not 0 <= lane < lanes or peer_lanes < 1:
        raise ValueError(f"lane {lane} of {lanes}, peer with {peer_lanes} lanes")
    senders = {p for p in range(peer_lanes) if send_lane(p, lanes) == lane}
    return sorted(senders | {send_lane(lane, peer_lanes)})
