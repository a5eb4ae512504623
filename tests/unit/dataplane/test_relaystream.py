"""A lane's TLS way to a relay counts what it cannot send, in the lane's own
drop counters (so ``skylan status`` shows it), while it is not connected."""

from __future__ import annotations

import asyncio
import socket

from skylan.dataplane.relaystream import UNSENT, RelayStream
from skylan.model.counters import DropCounters


def test_datagrams_the_stream_cannot_send_are_counted_in_the_lanes_drops() -> None:
    async def main() -> DropCounters:
        lane = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        lane.bind(("127.0.0.1", 0))
        closed = socket.socket()  # a port nobody listens on: never connected
        closed.bind(("127.0.0.1", 0))
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        drops = DropCounters()
        stream = RelayStream("127.0.0.1", closed.getsockname()[1], lane.getsockname()[1], drops)
        stream.start()
        try:
            local = stream.local(7000)
            for _ in range(3):
                lane.sendto(b"ciphertext", local)
            stranger.sendto(b"not from the lane", local)  # ignored, not counted
            for _ in range(100):
                await asyncio.sleep(0.01)
                if drops[UNSENT] >= 3:
                    break
        finally:
            stream.close()
            lane.close()
            closed.close()
            stranger.close()
        return drops

    drops = asyncio.run(main())
    assert drops.by_reason == {UNSENT: 3}
