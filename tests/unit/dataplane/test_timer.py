"""The data plane keeps the loop's wake-up at the tunnel engine's next
deadline without re-arming the loop's timer after every pass."""

from __future__ import annotations

import asyncio

from skylan.dataplane import lane as node
from skylan.dataplane.lane import TIMER_RECHECK, Dataplane
from skylan.hostnet.kernellinks import KernelLinks
from skylan.tunnel.config import TunnelConfig
from skylan.tunnel.keys import StaticKeypair


class Deadlines:
    """Stands in for ``TunnelEngine.get_timer``: the next deadline moves on
    every call, as the keepalive deadline does with every packet sent."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.loop.time() + 20.0 + self.calls


def test_passes_ask_the_engine_at_most_once_per_interval_and_a_recheck_follows() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        dp = Dataplane(StaticKeypair.generate(), 0, host=KernelLinks())
        try:
            dp.start()
            deadlines = Deadlines(loop)
            dp.engine.get_timer = deadlines  # type: ignore[method-assign]
            dp._arm_timer()  # a first pass asks
            assert deadlines.calls == 1 and dp._timer is not None
            first = dp._timer.when()
            for _ in range(100):  # a burst of passes within the interval does not
                dp._arm_timer()
            assert deadlines.calls == 1 and dp._timer.when() == first
            assert dp._recheck is not None  # but the end of the interval is booked
            await asyncio.sleep(TIMER_RECHECK * 1.5)
            assert deadlines.calls == 2 and dp._recheck is None
            assert dp._timer is not None and dp._timer.when() > first  # moved to the new one
            dp._arm_timer(force=True)  # after the timer or a netmap change: at once
            assert deadlines.calls == 3
        finally:
            dp.close()
        assert dp._recheck is None or dp._recheck.cancelled()

    asyncio.run(scenario())


def test_the_recheck_interval_is_far_below_the_engines_shortest_timer() -> None:
    # the earliest deadline a data pass can set is the first handshake retry
    # or a reassembly timeout, half a second away
    config = TunnelConfig()
    assert min(config.first_retry, config.reassembly_timeout) >= node.TIMER_RECHECK * 5
