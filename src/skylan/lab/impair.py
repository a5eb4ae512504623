"""Userspace link impairment: loss, delay, jitter and reordering.

The lab's kernel may lack ``sch_netem`` (this project's CI kernel does), so an
impaired underlay link is spliced through this relay instead: the host's
bridge port is taken off the bridge and the relay copies frames between it
and a fresh veth into the bridge, dropping and delaying them like netem does.
Frames are read and written with ``PACKET_VNET_HDR`` so offloaded super-frames
and partial checksums pass through untouched.

Usage: ``python -m skylan.lab.impair IF_A IF_B [--loss PCT] [--delay MS]
[--jitter MS] [--reorder PCT] [--seed N]``
"""

from __future__ import annotations

import argparse
import heapq
import random
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass

PACKET_VNET_HDR = 15
SOL_PACKET = 263
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAX_FRAME = 65536 + 64


@dataclass
class Impairment:
    """netem's semantics, decided per frame from a seeded generator.

    ``reorder_pct`` of frames skip the delay (and so overtake the ones before
    them), as ``tc netem delay D reorder P`` does.
    """

    loss_pct: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0
    reorder_pct: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def due(self, now: float) -> float | None:
        """When to forward a frame that arrived at ``now``; None drops it."""
        if self.loss_pct and self._rng.random() * 100 < self.loss_pct:
            return None
        if self.reorder_pct and self._rng.random() * 100 < self.reorder_pct:
            return now
        delay = self.delay_s
        if self.jitter_s:
            delay += self._rng.uniform(-self.jitter_s, self.jitter_s)
        return now + max(delay, 0.0)


def open_port(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


def relay(a: socket.socket, b: socket.socket, imp: Impairment) -> None:
    queue: list[tuple[float, int, socket.socket, bytes]] = []
    seq = 0
    peer = {a: b, b: a}
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                out.send(frame)
            except OSError:
                pass  # a full queue or a frame the device refuses: a lost frame
        timeout = max(queue[0][0] - now, 0.0) if queue else 1.0
        readable, _, _ = select.select([a, b], [], [], timeout)
        now = time.monotonic()
        for sock in readable:
            for _ in range(64):
                try:
                    frame, addr = sock.recvfrom(MAX_FRAME)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own transmissions, seen again by the tap
                when = imp.due(now)
                if when is None:
                    continue
                if when <= now and not queue:
                    try:
                        peer[sock].send(frame)
                    except OSError:
                        pass
                    continue
                seq += 1
                heapq.heappush(queue, (when, seq, peer[sock], frame))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m skylan.lab.impair")
    parser.add_argument("if_a")
    parser.add_argument("if_b")
    parser.add_argument("--loss", type=float, default=0.0, help="percent of frames dropped")
    parser.add_argument("--delay", type=float, default=0.0, help="milliseconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="milliseconds")
    parser.add_argument("--reorder", type=float, default=0.0, help="percent sent undelayed")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    imp = Impairment(args.loss, args.delay / 1000, args.jitter / 1000, args.reorder, args.seed)
    a, b = open_port(args.if_a), open_port(args.if_b)
    print("ready", flush=True)  # the lab waits for this before impairing traffic
    relay(a, b, imp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
