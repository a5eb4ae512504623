"""One hostile peer hurts nobody else: low-order keys, malformed authentic data.

Every key in ``LOW_ORDER`` gives an all-zero Diffie-Hellman result with any
private key (the points of order 1, 2, 4 and 8 of Curve25519, and non-canonical
encodings of such points): a member with one can share no secret with anybody.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skylan.model.publickey import LowOrderKey, check_public, decode_public, encode_public
from skylan.tunnel import wire
from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.noise import HandshakeIK, NoiseError

from .simnet import Net, frame
from .test_engine import established, received

LOW_ORDER = [
    bytes.fromhex(h)
    for h in (
        "00" * 32,  # 0
        "01" + "00" * 31,  # 1
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  # order 8
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",  # order 8
        "ec" + "ff" * 30 + "7f",  # p - 1 (order 2)
        "ed" + "ff" * 30 + "7f",  # p, non-canonical 0
        "ee" + "ff" * 30 + "7f",  # p + 1, non-canonical 1
    )
]


@pytest.mark.parametrize("key", LOW_ORDER, ids=lambda k: k.hex()[:8])
def test_low_order_keys_are_refused_everywhere_a_key_comes_in(key: bytes) -> None:
    with pytest.raises(LowOrderKey):
        check_public(key)
    with pytest.raises(ValueError, match="low-order"):
        decode_public(encode_public(key))
    net = Net()
    node = net.node("a", "198.18.1.1")
    with pytest.raises(ValueError, match="low-order"):
        node.engine.add_peer(key, ("198.18.1.9", 51820))
    assert node.engine.peers() == []


@pytest.mark.parametrize("key", LOW_ORDER, ids=lambda k: k.hex()[:8])
def test_a_handshake_towards_a_low_order_key_fails_as_a_handshake(key: bytes) -> None:
    """Every DH of the handshake goes through the one check: NoiseError, never
    the ValueError that used to escape the engine's send and timer calls."""
    hs = HandshakeIK(initiator=True, static=StaticKeypair.generate(), remote_static=key)
    with pytest.raises(NoiseError):
        hs.write_message_1(b"")


@given(st.binary(min_size=32, max_size=32))
@settings(max_examples=200)
def test_keys_are_accepted_or_refused_as_a_value_error_only(raw: bytes) -> None:
    """A refused key is one no private key gets a secret with (not a false alarm)."""
    try:
        assert check_public(raw) == raw
    except LowOrderKey:
        with pytest.raises(ValueError):
            StaticKeypair.generate().dh(raw)


def test_real_keys_are_accepted() -> None:
    for _ in range(50):
        pub = StaticKeypair.generate().public
        assert check_public(pub) == pub
        assert decode_public(encode_public(pub)) == pub


def test_a_peer_that_slipped_past_add_peer_fails_alone() -> None:
    """Defence in depth: even a peer whose key admits no secret (as if it had
    been added before keys were checked) only makes its own handshake fail,
    counted; connect, send and the timer never raise, and a good peer works."""
    net = Net()
    a, b = net.pair()
    from skylan.tunnel.peer import Peer

    bad = LOW_ORDER[2]
    a.engine._peers[bad] = Peer(bad, ("198.18.1.9", 51820))
    a.engine.connect(bad, net.now)
    a.engine.send_frames(bad, 7, [frame(b"lost")], net.now)
    a.engine.handle_timer(net.now + 1)
    assert a.engine.drops["bad_peer_key"] >= 2
    a.engine.send_frames(b.keys.public, 7, [frame(b"fine")], net.now)
    net.pump()
    assert received(b) == [frame(b"fine")]


def _batch(messages: list[list[bytes]]) -> tuple[bytes, int]:
    """Full-size chunks of several messages back to back, as one GRO batch."""
    datagrams = [d for m in messages for d in m]
    size = len(datagrams[0])
    assert all(len(d) == size for d in datagrams)
    return b"".join(datagrams), size


def test_a_malformed_authentic_container_in_a_gro_batch_is_a_counted_drop() -> None:
    """An authenticated peer sends a container that does not parse between two
    good ones, all in one GRO batch: that message is dropped and counted, and
    the rest of the batch is still delivered."""
    net = Net()
    a, b = established(net)
    chunk = net.config.chunk_size
    rng = random.Random(3)
    # plaintexts of exactly three full chunks each (the tag included)
    length = 3 * chunk - 16
    good = [
        wire.encode_frames(7, [frame(rng.randbytes(length - 5 - 2 - len(frame(b""))))])
        for _ in (1, 2)
    ]
    bad = bytes([9]) + rng.randbytes(length - 1)  # an unknown container kind
    assert all(len(p) == length for p in (*good, bad))
    messages = []
    for plaintext in (good[0], bad, good[1]):
        a.engine.send_container(b.keys.public, plaintext, net.now)
        messages.append([d for tx in a.engine.datagrams_to_send() for d in tx.datagrams()])
    assert [len(m) for m in messages] == [3, 3, 3]
    data, segment = _batch(messages)
    b.engine.receive_segments(data, segment, a.addr, net.now)  # must not raise
    frames = received(b)
    assert frames == [wire.decode_container(p).frames[0] for p in good]
    assert b.engine.drops["bad_container_kind"] == 1


@given(st.integers(1, 6000).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
@settings(max_examples=150, deadline=None)
def test_any_authentic_plaintext_in_any_batch_never_raises(plaintext: bytes) -> None:
    net = Net()
    a, b = established(net)
    a.engine.send_container(b.keys.public, plaintext, net.now)
    datagrams = [d for tx in a.engine.datagrams_to_send() for d in tx.datagrams()]
    segment = len(datagrams[0])
    b.engine.receive_segments(b"".join(datagrams), segment, a.addr, net.now)
    received(b)
