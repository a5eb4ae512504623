"""Property tests of every decoder: valid input round-trips, and any bytes at
all either decode or raise WireError (never anything else)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skylan.tunnel import framerows, timestamp, wire

frames = st.binary(min_size=wire.MIN_FRAME, max_size=2000)


@given(st.integers(0, 2**32 - 1), st.lists(frames, min_size=1, max_size=10))
def test_frames_container_round_trips(network_id: int, fs: list[bytes]) -> None:
    c = wire.decode_container(wire.encode_frames(network_id, fs))
    assert (c.kind, c.network_id, list(c.frames)) == (wire.Kind.FRAMES, network_id, fs)


@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.tuples(st.binary(min_size=10, max_size=10), frames), min_size=1, max_size=10),
)
def test_vnet_frames_container_round_trips(
    network_id: int, items: list[tuple[bytes, bytes]]
) -> None:
    c = wire.decode_container(wire.encode_vnet_frames(network_id, items))
    assert c.kind is wire.Kind.VNET_FRAMES and c.network_id == network_id
    assert c.vnet_items() == items


@given(
    st.integers(0, 2**32 - 1),
    st.binary(min_size=wire.MIN_FRAME, max_size=200),
    st.lists(st.binary(min_size=10, max_size=10), min_size=1, max_size=40),
    st.data(),
)
def test_equal_length_frames_decode_as_rows(
    network_id: int, frame: bytes, vnets: list[bytes], data: st.DataObject
) -> None:
    """From UNIFORM_FROM frames of one length on, a batch comes back as rows
    holding exactly the frames; one frame of another length anywhere, or
    fewer frames, and it is parsed frame by frame as before."""
    items = [(vnet, bytes([i % 256]) + frame[1:]) for i, vnet in enumerate(vnets)]
    odd = data.draw(st.none() | st.integers(0, len(items) - 1))
    if odd is not None:
        vnet, f = items[odd]
        items[odd] = (vnet, f + data.draw(st.binary(min_size=1, max_size=30)))
    c = wire.decode_container(wire.encode_vnet_frames(network_id, items))
    assert c.vnet_items() == items
    uniform = odd is None and len(items) >= framerows.UNIFORM_FROM
    assert (c.rows is not None) is uniform
    if c.rows is not None:
        assert (c.frames, c.vnet_hdrs) == ((), ())
        assert [(c.rows.vnet_hdr(i), c.rows.frame(i)) for i in range(len(c.rows))] == items
        assert c.rows.array.shape == (len(items), framerows.ROW_HEAD + len(frame))


def test_rows_need_every_length_field_equal() -> None:
    """A batch whose size happens to be a multiple of its first row, but whose
    length fields differ, is not taken for rows (and fails to parse, as the
    frame-by-frame parser finds it malformed)."""
    body = b"".join(
        wire.encode_vnet_frames(1, [(bytes(10), bytes(30))])[wire.CONTAINER_PREFIX_LEN :]
        for _ in range(framerows.UNIFORM_FROM)
    )
    forged = bytearray(wire.encode_vnet_frames(1, [(bytes(10), bytes(30))])[:5] + body)
    forged[5 + 3 * (12 + 30) + 1] = 31  # frame 3 claims one byte more
    with pytest.raises(wire.WireError):
        wire.decode_container(bytes(forged))


@given(st.integers(0, 2**32 - 1), st.binary(min_size=10, max_size=10), frames)
def test_superframe_container_round_trips(network_id: int, vnet: bytes, f: bytes) -> None:
    c = wire.decode_container(wire.encode_superframe(network_id, vnet, f))
    assert (c.kind, c.network_id, c.vnet_hdr, c.frames) == (
        wire.Kind.SUPERFRAME,
        network_id,
        vnet,
        (f,),
    )


@given(
    st.integers(0, 127), st.integers(1, 128), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)
)
def test_data_header_round_trips(index: int, count: int, receiver: int, counter: int) -> None:
    if index >= count:
        return
    hdr = wire.DataHeader(index, count, receiver, counter)
    assert wire.decode_data_header(hdr.encode() + b"x") == hdr
    assert hdr.aad() == wire.DataHeader(0, count, receiver, counter).aad()


DECODERS = [
    wire.decode_container,
    wire.decode_data_header,
    wire.decode_initiation,
    wire.decode_response,
    wire.decode_cookie_reply,
    wire.message_type,
]


@pytest.mark.parametrize("decoder", DECODERS)
@given(data=st.binary(max_size=300))
def test_decoders_raise_only_wire_errors(decoder: object, data: bytes) -> None:
    try:
        decoder(data)  # type: ignore[operator]
    except wire.WireError as exc:
        assert exc.reason


def test_frame_size_limits() -> None:
    with pytest.raises(ValueError, match="not an Ethernet frame"):
        wire.encode_frames(1, [b"short"])
    with pytest.raises(ValueError, match="10 bytes"):
        wire.encode_superframe(1, b"", bytes(60))
    with pytest.raises(ValueError, match="10 bytes"):
        wire.encode_vnet_frames(1, [(b"", bytes(60))])
    with pytest.raises(ValueError, match="not an Ethernet frame"):
        wire.encode_vnet_frames(1, [(bytes(10), b"short")])
    truncated = wire.encode_vnet_frames(1, [(bytes(10), bytes(60))])[:-1]
    with pytest.raises(wire.WireError):
        wire.decode_container(truncated)


def test_fixed_message_sizes() -> None:
    assert (wire.INITIATION_LEN, wire.RESPONSE_LEN, wire.COOKIE_REPLY_LEN) == (148, 92, 52)


@given(st.floats(0, 2**40), st.floats(0, 2**40))
def test_timestamps_order_like_time(t1: float, t2: float) -> None:
    """Encoded timestamps compare exactly as (seconds, nanoseconds) do, and
    time that moves forward by at least a microsecond always encodes newer."""

    def parts(t: float) -> tuple[int, int]:
        return int(t), min(int((t - int(t)) * 1e9), 999_999_999)

    e1, e2 = timestamp.encode(t1), timestamp.encode(t2)
    assert timestamp.is_newer(e2, e1) == (parts(t2) > parts(t1))
    assert timestamp.is_newer(e1, e2) == (parts(t1) > parts(t2))
    if t2 - t1 >= 1e-6 * max(1.0, t2 / 2**20):  # beyond the float's resolution there
        assert timestamp.is_newer(e2, e1)


macs = st.binary(min_size=16, max_size=16)


@given(st.integers(0, 2**32 - 1), st.binary(min_size=108, max_size=108), macs, macs)
def test_initiation_round_trips(sender: int, noise: bytes, mac1: bytes, mac2: bytes) -> None:
    msg = wire.Initiation(sender, noise, mac1, mac2)
    assert wire.decode_initiation(msg.encode_without_macs() + mac1 + mac2) == msg


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(min_size=48, max_size=48),
    macs,
    macs,
)
def test_response_round_trips(s: int, r: int, noise: bytes, mac1: bytes, mac2: bytes) -> None:
    msg = wire.Response(s, r, noise, mac1, mac2)
    assert wire.decode_response(msg.encode_without_macs() + mac1 + mac2) == msg


@given(
    st.integers(0, 2**32 - 1),
    st.binary(min_size=12, max_size=12),
    st.binary(min_size=32, max_size=32),
)
def test_cookie_reply_round_trips(receiver: int, nonce: bytes, sealed: bytes) -> None:
    msg = wire.CookieReply(receiver, nonce, sealed)
    assert wire.decode_cookie_reply(msg.encode()) == msg
