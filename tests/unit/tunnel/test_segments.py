"""The vectorised chunk layout must produce exactly what per-chunk code would."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from skylan.tunnel import segments
from skylan.tunnel.wire import (
    DATA_HDR,
    DATA_HDR_LEN,
    FLAG_REDUNDANT,
    MAX_CHUNKS,
    MsgType,
    fec_groups,
)


def header(index: int, count: int, counter: int = 77, receiver: int = 9) -> bytes:
    return DATA_HDR.pack(MsgType.DATA, 0, index, count, receiver, counter)


def per_chunk(ciphertext: bytes, chunk: int, counter: int = 77) -> bytes:
    count = -(-len(ciphertext) // chunk)
    return b"".join(
        header(i, count, counter) + ciphertext[i * chunk : (i + 1) * chunk] for i in range(count)
    )


@given(st.integers(17, 40_000), st.integers(16, 1500))
def test_lay_out_matches_chunk_by_chunk(size: int, chunk: int) -> None:
    count = -(-size // chunk)
    if count > MAX_CHUNKS or count < 2:
        return
    ciphertext = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    out = segments.lay_out(header(0, count), ciphertext, chunk)
    assert out.tobytes() == per_chunk(ciphertext.tobytes(), chunk)


def reference_run(flat: bytes, segment: int, first_index: int) -> int:
    """The rule, one row at a time: row 0's header, the chunk index counting up."""
    rows = [flat[i : i + segment] for i in range(0, len(flat) - segment + 1, segment)]
    base = rows[0][:DATA_HDR_LEN]
    for i, row in enumerate(rows):
        hdr = row[:DATA_HDR_LEN]
        same = hdr[:2] == base[:2] and hdr[3:] == base[3:]
        if not same or hdr[2] != first_index + i:
            return i
    return len(rows)


@given(
    st.integers(2, 40),
    st.integers(0, 60),
    st.lists(st.tuples(st.integers(0, 45), st.integers(0, DATA_HDR_LEN + 3)), max_size=3),
)
def test_run_length_stops_at_the_first_other_datagram(
    rows: int, first: int, flips: list[tuple[int, int]]
) -> None:
    count = first + rows + 1
    segment = DATA_HDR_LEN + 4
    flat = bytearray(b"".join(header(first + i, count) + bytes(4) for i in range(rows)))
    for row, byte in flips:  # another message, or not the next chunk (payload bytes: no matter)
        if row < rows:
            flat[row * segment + byte] ^= 0x01
    view = segments.as_rows(memoryview(bytes(flat)), 0, segment, MAX_CHUNKS)
    expected = reference_run(bytes(flat), segment, flat[segments.CHUNK_INDEX])
    assert segments.run_length(view) == expected
    if not flips:
        assert expected == rows


def test_run_length_sees_every_header_byte_of_every_row() -> None:
    """One changed header byte anywhere ends the run there: every row (the
    last included, which a check of the whole run at once could skip) and
    every byte, deterministically."""
    segment = DATA_HDR_LEN + 4
    for first, rows in ((0, 6), (3, 5), (0, MAX_CHUNKS - 1), (MAX_CHUNKS - 9, 8)):
        count = first + rows + 1
        clean = b"".join(header(first + i, count) + bytes(4) for i in range(rows))
        assert segments.run_length(segments.as_rows(memoryview(clean), 0, segment, 999)) == rows
        for row in range(1, rows):
            for byte in range(DATA_HDR_LEN):
                flat = bytearray(clean)
                flat[row * segment + byte] ^= 0x80
                view = segments.as_rows(memoryview(bytes(flat)), 0, segment, 999)
                assert segments.run_length(view) == row, (first, rows, row, byte)


def test_as_rows_takes_only_whole_segments_and_the_limit() -> None:
    data = memoryview(bytes(range(50)))
    assert segments.as_rows(data, 3, 10, 99).shape == (4, 10)
    assert segments.as_rows(data, 3, 10, 2).shape == (2, 10)
    assert segments.as_rows(data, 0, 10, 99)[1, 0] == 10


@given(st.integers(3 * 100, 30_000), st.integers(100, 1404))
def test_lay_out_fec_adds_parity_and_a_last_copy(size: int, chunk: int) -> None:
    count = -(-size // chunk)
    if count > MAX_CHUNKS or count < 3:
        return
    groups = fec_groups(count)
    ciphertext = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    out, copy = segments.lay_out_fec(header(0, count), ciphertext, chunk, groups)
    plain = per_chunk(ciphertext.tobytes(), chunk)
    segment = DATA_HDR_LEN + chunk
    cut = (count - 1) * segment
    assert out[:cut].tobytes() == plain[:cut]  # the full chunks, as without parity
    assert out[cut + groups * segment :].tobytes() == plain[cut:]  # then the last chunk
    assert (
        copy
        == plain[cut : cut + DATA_HDR_LEN].replace(b"\x04\x00", b"\x04\x01", 1)
        + plain[cut + DATA_HDR_LEN :]
    )
    chunks = [ciphertext[i * chunk : (i + 1) * chunk].tobytes() for i in range(count - 1)]
    for g in range(groups):
        row = out[cut + g * segment : cut + (g + 1) * segment].tobytes()
        assert row[:DATA_HDR_LEN] == DATA_HDR.pack(MsgType.DATA, FLAG_REDUNDANT, g, count, 9, 77)
        want = bytearray(chunk)
        for member in chunks[g::groups]:
            want = bytearray(x ^ y for x, y in zip(want, member, strict=True))
        assert row[DATA_HDR_LEN:] == bytes(want)
