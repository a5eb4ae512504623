"""A batch of equal-length frames, seen as rows of one array instead of one
Python object per frame.

A burst of small packets of one flow (iperf3 -l 64, a game, RTP, DNS under
load) reaches the receiver as a ``VNET_FRAMES`` container of frames that all
have the same length. Parsed frame by frame, such a batch costs the receiver
well over a microsecond of interpreter per frame before the packet reaches the
kernel (parsing, the switch, merging datagrams for the TAP), which on a busy
machine is CPU taken from the applications themselves. Seen as an
``rows x (2 + 10 + length)`` array over the decrypted message, the same batch
can be checked and merged with a few numpy operations whatever its size; the
frames are still available one by one for anything that needs them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Bytes = npt.NDArray[np.uint8]

# each frame of a VNET_FRAMES container: its 2-byte length, its 10-byte
# virtio_net_hdr, then the frame (see wire.encode_vnet_frames)
LENGTH_LEN = 2
VNET_LEN = 10
ROW_HEAD = LENGTH_LEN + VNET_LEN
UNIFORM_FROM = 8  # frames from which numpy's fixed cost pays off


class FrameRows:
    """Frames of one length as they lie in a decrypted message: row ``i`` is
    frame ``i``'s length field, virtio header and frame, back to back."""

    __slots__ = ("array", "count", "data", "frame_len", "offset", "stride")

    def __init__(self, data: bytes, offset: int, frame_len: int, count: int) -> None:
        self.data = data
        self.offset = offset
        self.frame_len = frame_len
        self.count = count
        self.stride = ROW_HEAD + frame_len
        # a read-only count x stride view of the message (no copy), made once:
        # the length check, the switch's MAC check and merging all look at it
        flat: Bytes = np.frombuffer(data, np.uint8, count * self.stride, offset)
        self.array: Bytes = flat.reshape(count, self.stride)

    @classmethod
    def find(cls, data: bytes, offset: int, min_frame: int) -> FrameRows | None:
        """The frames from ``offset`` to the end of ``data`` as rows, if there
        are at least ``UNIFORM_FROM`` of them and all have one length (at
        least ``min_frame``); None sends the caller to the frame-by-frame
        parser, which also reports what is wrong with a malformed batch."""
        end = len(data)
        if end - offset < ROW_HEAD:
            return None
        frame_len = (data[offset] << 8) | data[offset + 1]
        stride = ROW_HEAD + frame_len
        count, rest = divmod(end - offset, stride)
        if rest or count < UNIFORM_FROM or frame_len < min_frame:
            return None
        rows = cls(data, offset, frame_len, count)
        lengths = rows.array[:, :LENGTH_LEN]
        if not (lengths == lengths[0]).all():
            return None
        return rows

    def __len__(self) -> int:
        return self.count

    def vnet_hdr(self, i: int) -> bytes:
        start = self.offset + i * self.stride + LENGTH_LEN
        return self.data[start : start + VNET_LEN]

    def frame(self, i: int) -> bytes:
        start = self.offset + i * self.stride + ROW_HEAD
        return self.data[start : start + self.frame_len]

    def items(self) -> list[tuple[bytes, bytes]]:
        """Each frame with its virtio header, as the frame-by-frame parser gives them."""
        data, stride, frame_len = self.data, self.stride, self.frame_len
        out = []
        for start in range(self.offset, self.offset + self.count * stride, stride):
            frame = start + ROW_HEAD
            out.append((data[start + LENGTH_LEN : frame], data[frame : frame + frame_len]))
        return out
