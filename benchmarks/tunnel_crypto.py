"""Micro-benchmark of the tunnel's per-message cost, with a same-run baseline.

Reports µs per 64 KB TSO super-frame (seal: one AES-GCM + chunking into
UDP-sized segments; then reassemble + decrypt) and per 1400-byte packet, and
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

from skylan.model.counters import DropCounters
from skylan.tunnel import wire
from skylan.tunnel.session import Session


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    k1, k2 = os.urandom(32), os.urandom(32)
    drops = DropCounters()
    tx = Session(
        local_index=1,
        remote_index=2,
        send_key=k1,
        recv_key=k2,
        created=0,
        initiator=True,
        drops=drops,
    )
    rx = Session(
        local_index=2,
        remote_index=1,
        send_key=k2,
        recv_key=k1,
        created=0,
        initiator=False,
        drops=drops,
    )
    buf = bytearray(70_000)
    aead = AESGCM(k1)
    nonce = bytes(12)

    def roundtrip(plaintext: bytes) -> Callable[[], object]:
        def run() -> object:
            sealed = tx.seal(plaintext, 1404, buf)
            # what a GRO receive hands back: the segments back to back
            wire_bytes = memoryview(b"".join(sealed.buffers))
            out = None
            for off in range(0, len(wire_bytes), sealed.segment_size):
                dgram = wire_bytes[off : off + sealed.segment_size]
                header = wire.decode_data_header(dgram)
                out = rx.open(header, dgram[wire.DATA_HDR_LEN :], 0.0)
            assert out is not None
            return out

        return run

    def bare(plaintext: bytes) -> Callable[[], object]:
        def run() -> object:
            return aead.decrypt(nonce, aead.encrypt(nonce, plaintext, None), None)

        return run

    superframe = wire.encode_superframe(1, bytes(10), os.urandom(65_000))
    packet = wire.encode_frames(1, [os.urandom(1400)])
    print(f"{'case':<28}{'skylan µs':>12}{'bare AES-GCM µs':>18}{'ratio':>8}{'Gbit/s':>9}")
    for name, data in (("64 KB super-frame", superframe), ("1400 B packet", packet)):
        ours = per_call_us(roundtrip(data), args.seconds)
        base = per_call_us(bare(data), args.seconds)
        gbps = len(data) * 8 / ours / 1e3
        print(f"{name:<28}{ours:>12.2f}{base:>18.2f}{ours / base:>8.2f}{gbps:>9.2f}")
    assert drops.total == 0, drops.by_reason


if __name__ == "__main__":
    main()
