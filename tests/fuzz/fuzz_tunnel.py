"""atheris harness: arbitrary datagrams into an engine with a live session.

Run by tests/fuzz/test_fuzz.py; by hand:
``.venv/bin/python tests/fuzz/fuzz_tunnel.py -max_total_time=60 CORPUS_DIR``.
Any exception escaping ``receive_datagram`` or ``receive_segments`` is a crash.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from skylan.tunnel import wire
    from skylan.tunnel.engine import TunnelEngine
    from skylan.tunnel.keys import StaticKeypair

A_ADDR = ("198.18.1.1", 51820)
B_ADDR = ("198.18.1.2", 51820)
NOW = 1000.0


def _pair() -> tuple[TunnelEngine, TunnelEngine, list[bytes]]:
    """An established pair and a seed corpus of real datagrams between them."""
    ka, kb = StaticKeypair.generate(), StaticKeypair.generate()
    a, b = TunnelEngine(ka), TunnelEngine(kb)
    a.add_peer(kb.public, B_ADDR)
    b.add_peer(ka.public, A_ADDR)
    seeds: list[bytes] = []

    def pump() -> None:
        for _ in range(5):
            for src, dst, addr in ((a, b, A_ADDR), (b, a, B_ADDR)):
                for tx in src.datagrams_to_send():
                    for d in tx.datagrams():
                        seeds.append(d)
                        dst.receive_datagram(d, addr, NOW)

    a.send_frames(kb.public, 1, [bytes(60)], NOW)
    pump()
    a.send_superframe(kb.public, 1, bytes(10), bytes(5000), NOW)
    b.connect(ka.public, NOW)
    pump()
    b.send_container(ka.public, wire.FEEDBACK_WANT_FEC, NOW)  # a now adds parity
    pump()
    a.send_superframe(kb.public, 1, bytes(10), bytes(12_000), NOW)
    pump()
    assert any(d[0] == wire.MsgType.DATA and d[1] & wire.FLAG_REDUNDANT for d in seeds)
    return a, b, seeds


_A, _B, SEEDS = _pair()


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, 3)
    segment = fdp.ConsumeIntInRange(0, 1500)
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    if which == 1 and SEEDS:  # splice fuzz bytes into a real datagram
        seed = SEEDS[len(body) % len(SEEDS)]
        body = seed[: len(body) % (len(seed) + 1)] + body
    target = _B if which != 2 else _A
    if which == 3:  # a GRO batch: real chunks back to back, then the fuzz bytes
        batch = b"".join(SEEDS[:4]) + body
        sender = A_ADDR if target is _B else B_ADDR
        target.receive_segments(batch, segment or len(SEEDS[0]), sender, NOW)
    target.receive_datagram(body, A_ADDR if target is _B else B_ADDR, NOW)
    try:
        wire.decode_container(body)
    except wire.WireError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
