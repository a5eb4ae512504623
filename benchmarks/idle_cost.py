"""What one small packet costs the tunnel engine warm, and after the process
(and its CPU) sat idle: the reason skylan's RTT at idle is larger than back
to back.

    .venv/bin/python benchmarks/idle_cost.py [--samples 200] [--pauses 0 0.001 0.002 0.01]

Two engines in this process (sans-I/O, no sockets) exchange one 98-byte frame
(a ping's size): the sender seals it, the receiver authenticates and delivers
it. Each pass runs after sleeping ``pause`` seconds, and the table gives the
median time of each half and its ratio to the back-to-back case (pause 0)
measured in the same run. On a VM whose vCPUs halt when idle, code that runs
after a long enough pause runs many times slower; skylan's round trip has
four such passes (each agent, each way), so this ratio, not the kernel, sets
its idle RTT.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skylan.tunnel.config import TunnelConfig
from skylan.tunnel.engine import TunnelEngine
from skylan.tunnel.keys import StaticKeypair

A_ADDR, B_ADDR = ("198.18.1.1", 51820), ("198.18.1.2", 51820)


def pair() -> tuple[TunnelEngine, TunnelEngine, bytes]:
    ka, kb = StaticKeypair.generate(), StaticKeypair.generate()
    a, b = TunnelEngine(ka, config=TunnelConfig()), TunnelEngine(kb, config=TunnelConfig())
    a.add_peer(kb.public, B_ADDR)
    b.add_peer(ka.public, A_ADDR)
    a.connect(kb.public, 0.0)
    for _ in range(4):  # the handshake, delivered by hand
        for src, dst, addr in ((a, b, A_ADDR), (b, a, B_ADDR)):
            for tx in src.datagrams_to_send():
                for datagram in tx.datagrams():
                    dst.receive_datagram(datagram, addr, 0.0)
    while a.next_event() is not None or b.next_event() is not None:
        pass
    return a, b, kb.public


def one_pass(a: TunnelEngine, b: TunnelEngine, peer: bytes, frame: bytes) -> tuple[float, float]:
    t0 = time.perf_counter_ns()
    a.send_vnet_frames(peer, 1, [(bytes(10), frame)], 1.0)
    datagrams = [d for tx in a.datagrams_to_send() for d in tx.datagrams()]
    t1 = time.perf_counter_ns()
    for d in datagrams:
        b.receive_segments(d, len(d), A_ADDR, 1.0)
    delivered = 0
    while b.next_event() is not None:
        delivered += 1
    t2 = time.perf_counter_ns()
    if not delivered:
        raise RuntimeError("the frame was not delivered")
    return (t1 - t0) / 1000, (t2 - t1) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--pauses", type=float, nargs="+", default=[0, 0.001, 0.002, 0.005, 0.01])
    args = parser.parse_args()
    a, b, peer = pair()
    frame = os.urandom(98)
    rows = []
    for pause in args.pauses:
        seal, receive = [], []
        for _ in range(args.samples):
            if pause:
                time.sleep(pause)
            s, r = one_pass(a, b, peer, frame)
            seal.append(s)
            receive.append(r)
        rows.append((pause, statistics.median(seal), statistics.median(receive)))
    base = rows[0][1] + rows[0][2]
    print(f"one 98-byte frame, medians of {args.samples}; x = ratio to the first pause")
    print(f"{'pause before':>13}{'seal us':>10}{'receive us':>12}{'both us':>10}{'x':>7}")
    for pause, s, r in rows:
        print(f"{pause * 1000:>10.1f} ms{s:>10.1f}{r:>12.1f}{s + r:>10.1f}{(s + r) / base:>7.1f}")


if __name__ == "__main__":
    main()
