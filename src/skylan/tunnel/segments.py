"""Chunked messages as rows of equal-sized segments, handled a whole run at a time.

A sealed 64 KB super-frame is ~46 datagrams: each a 16-byte header and a slice of
the one ciphertext. Laying them out (sender) or checking and stripping their
headers (receiver) one chunk at a time in Python cost more than the AES-GCM of
the whole message, so both are done on the message as a 2-D array of segments
(one row per datagram) with a handful of numpy operations instead. The result is
the same bytes the per-chunk code produced; only the number of interpreter steps
changes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from skylan.tunnel.wire import DATA_HDR_LEN, FLAG_REDUNDANT, MAX_CHUNKS

Bytes = npt.NDArray[np.uint8]

FLAGS = 1
CHUNK_INDEX = 2  # the one header byte that differs between a message's chunks
_INDICES = np.arange(MAX_CHUNKS, dtype=np.uint8)
# what the headers of a run minus row 0's read as two words each: the index
# step in the first word, nothing in the second
_INDEX_STEPS = np.arange(MAX_CHUNKS, dtype="<u8") << np.uint64(8 * CHUNK_INDEX)
_RUN_STEPS = np.stack([_INDEX_STEPS, np.zeros_like(_INDEX_STEPS)], axis=1)
_RUN_BYTES = _RUN_STEPS.tobytes()


def lay_out(header: bytes, ciphertext: Bytes, chunk_size: int, gap: int = 0) -> Bytes:
    """The GSO send buffer for one message: ``header`` (with chunk index 0)
    and ``chunk_size`` bytes of ``ciphertext`` per segment, the chunk index
    set in each; the last segment carries what is left. ``gap`` segments are
    left unwritten before the last chunk, for parity (GSO wants every segment
    but the last full-size).
    """
    total = len(ciphertext)
    full = -(-total // chunk_size) - 1  # every chunk but the last is full-size
    segment = DATA_HDR_LEN + chunk_size
    last = (full + gap) * segment
    out: Bytes = np.empty(last + DATA_HDR_LEN + total - full * chunk_size, np.uint8)
    head = np.frombuffer(header, np.uint8)
    rows = out[: full * segment].reshape(full, segment)
    rows[:, :DATA_HDR_LEN] = head
    rows[:, CHUNK_INDEX] = _INDICES[:full]
    rows[:, DATA_HDR_LEN:] = ciphertext[: full * chunk_size].reshape(full, chunk_size)
    out[last : last + DATA_HDR_LEN] = head
    out[last + CHUNK_INDEX] = full
    out[last + DATA_HDR_LEN :] = ciphertext[full * chunk_size :]
    return out


def parity(full: Bytes, groups: int) -> Bytes:
    """The XOR of rows g, g + groups, g + 2 * groups, … of ``full`` for each
    group g: any one missing row of a group is the XOR of its parity and the
    group's other rows."""
    rows, size = full.shape
    padded = -(-rows // groups) * groups
    if padded != rows:
        full = np.concatenate([full, np.zeros((padded - rows, size), np.uint8)])
    out: Bytes = np.bitwise_xor.reduce(full.reshape(-1, groups, size), axis=0)
    return out


def lay_out_fec(
    header: bytes, ciphertext: Bytes, chunk_size: int, groups: int
) -> tuple[Bytes, bytes]:
    """Like :func:`lay_out`, with ``groups`` parity segments after the full
    chunks and a copy of the last chunk as a datagram of its own.
    """
    full = -(-len(ciphertext) // chunk_size) - 1
    segment = DATA_HDR_LEN + chunk_size
    out = lay_out(header, ciphertext, chunk_size, gap=groups)
    extra = out[full * segment : (full + groups) * segment].reshape(groups, segment)
    extra[:, :DATA_HDR_LEN] = np.frombuffer(header, np.uint8)
    extra[:, FLAGS] = FLAG_REDUNDANT
    extra[:, CHUNK_INDEX] = _INDICES[:groups]
    extra[:, DATA_HDR_LEN:] = parity(
        ciphertext[: full * chunk_size].reshape(full, chunk_size), groups
    )
    copy = bytearray(out[(full + groups) * segment :].tobytes())
    copy[FLAGS] = FLAG_REDUNDANT
    return out, bytes(copy)


def as_rows(data: memoryview, offset: int, segment: int, limit: int) -> Bytes:
    """The whole segments of ``data`` from ``offset`` on (at most ``limit``),
    as rows of a read-only 2-D view (no copy)."""
    rows = min((len(data) - offset) // segment, limit)
    flat: Bytes = np.frombuffer(data, np.uint8, rows * segment, offset)
    return flat.reshape(rows, segment)


def run_length(rows: Bytes) -> int:
    """How many leading rows are consecutive chunks of the message in row 0:
    the same header but for a chunk index counting up from row 0's.

    The 16-byte headers are compared as two little-endian 64-bit words; the
    chunk index is bits 16-23 of the first, so row ``i`` must read row 0's
    first word plus ``i << 16`` (no carry: indices stay below 256).
    """
    rows = rows[: max(0, MAX_CHUNKS - int(rows[0, CHUNK_INDEX]))] if len(rows) else rows
    count = len(rows)
    if count == 0:
        return 0
    words = rows[:, :DATA_HDR_LEN].view("<u8")
    steps = words - words[0]  # modulo 2**64, as the index steps add up
    if steps.tobytes() == _RUN_BYTES[: DATA_HDR_LEN * count]:
        return count  # the usual answer, all of them, in three array operations
    return int((steps == _RUN_STEPS[:count]).all(axis=1).argmin())  # the first that is not
