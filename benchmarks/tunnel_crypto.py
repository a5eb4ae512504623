"""Micro-benchmark of the tunnel's per-message cost, with a same-run baseline.

Reports µs per 64 KB TSO super-frame through the sans-I/O tunnel engine (seal:
one AES-GCM + laying out UDP-sized segments; then header checks, reassembly and
decrypt, from one GRO batch or datagram by datagram) and per 1400-byte packet, and
the ratio to the bare AES-256-GCM encrypt+decrypt of the same bytes measured
in the same run, so numbers are comparable across noisy machines.

    .venv/bin/python benchmarks/tunnel_crypto.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from skylan.tunnel.engine import TunnelEngine
from skylan.tunnel.events import Address
from skylan.tunnel.keys import StaticKeypair


def per_call_us(fn: Callable[[], object], seconds: float) -> float:
    """Median over 5 timed batches of the per-call time in microseconds."""
    n = 1
    while True:  # calibrate a batch of ~seconds/5
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 > seconds / 5:
            break
        n *= 2
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(samples)


def engine_pair() -> tuple[TunnelEngine, TunnelEngine, bytes, Address]:
    """Two engines with a session between them (handshake done in-process);
    returns the sender, the receiver, the receiver's key and the sender's address."""
    a_key, b_key = StaticKeypair.generate(), StaticKeypair.generate()
    a_addr, b_addr = ("198.18.0.1", 1), ("198.18.0.2", 1)
    a, b = TunnelEngine(a_key), TunnelEngine(b_key)
    a.add_peer(b_key.public, b_addr)
    b.add_peer(a_key.public, a_addr)
    a.send_frames(b_key.public, 1, [bytes(60)], 0.0)
    for _ in range(4):  # initiation, response, first data
        for src, dst, addr in ((a, b, a_addr), (b, a, b_addr)):
            for tx in src.datagrams_to_send():
                for d in tx.datagrams():
                    dst.receive_datagram(d, addr, 0.0)
    while b.next_event() is not None:
        pass
    return a, b, b_key.public, a_addr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    tx, rx, rx_key, tx_addr = engine_pair()
    aead = AESGCM(os.urandom(32))
    nonce = bytes(12)

    def roundtrip(vnet: bytes, frame: bytes, *, batched: bool) -> Callable[[], object]:
        """Seal and send, then receive: as one GRO batch (what ``UDP_GRO``
        hands over) or datagram by datagram."""

        def run() -> object:
            tx.send_superframe(rx_key, 1, vnet, frame, 0.0)
            (out,) = tx.datagrams_to_send()
            if batched:
                flat = b"".join(out.buffers)
                rx.receive_segments(flat, out.segment_size, tx_addr, 0.0)
            else:
                for d in out.datagrams():
                    rx.receive_datagram(d, tx_addr, 0.0)
            event = rx.next_event()
            assert event is not None
            return event

        return run

    def bare(plaintext: bytes) -> Callable[[], object]:
        def run() -> object:
            return aead.decrypt(nonce, aead.encrypt(nonce, plaintext, None), None)

        return run

    big, small = os.urandom(64_000), os.urandom(1400)
    print(f"{'case':<34}{'skylan µs':>12}{'bare AES-GCM µs':>18}{'ratio':>8}{'Gbit/s':>9}")
    cases = (
        ("64 KB super-frame, GRO batch", big, True),
        ("64 KB super-frame, datagrams", big, False),
        ("1400 B packet", small, False),
    )
    for name, data, batched in cases:
        ours = per_call_us(roundtrip(bytes(10), data, batched=batched), args.seconds)
        base = per_call_us(bare(data), args.seconds)
        gbps = len(data) * 8 / ours / 1e3
        print(f"{name:<34}{ours:>12.2f}{base:>18.2f}{ours / base:>8.2f}{gbps:>9.2f}")
    assert rx.drops.total == 0, rx.drops.by_reason


if __name__ == "__main__":
    main()
