"""A data plane driven by a netmap from a file, with no controller: what an
agent does with a netmap, reduced to that (for tests that hand-craft netmaps a
controller would refuse to make).

    python netmap_node.py KEYFILE PORT NETMAP.json STATUS.json [native|python] [REKEY_S]

Writes the data plane's status to STATUS.json every 0.3 s until killed. The
data plane is the Python one unless ``native`` is given; ``REKEY_S`` makes
sessions rekey after that many seconds (and expire at twice that).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from skylan.agent.state import load_key
from skylan.dataplane.lane import Dataplane
from skylan.hostnet.kernellinks import KernelLinks
from skylan.model.netmap import NetMap
from skylan.tunnel.config import TunnelConfig


async def main(
    key_file: Path, port: int, netmap_file: Path, status_file: Path, kind: str, rekey: float
) -> None:
    config = TunnelConfig(
        persistent_keepalive=25,
        rekey_after_time=rekey,
        reject_after_time=2 * rekey,
        rekey_timeout=min(5.0, rekey / 4),
    )
    dp = Dataplane(load_key(key_file), port, config, native=kind == "native", host=KernelLinks())
    dp.start()
    await dp.apply(NetMap.model_validate_json(netmap_file.read_text()))
    while True:
        tmp = status_file.with_suffix(".tmp")
        tmp.write_text(dp.status().model_dump_json())
        tmp.replace(status_file)
        await asyncio.sleep(0.3)


if __name__ == "__main__":
    args = sys.argv[1:]
    kind = args[4] if len(args) > 4 else "python"
    rekey = float(args[5]) if len(args) > 5 else 90.0
    asyncio.run(main(Path(args[0]), int(args[1]), Path(args[2]), Path(args[3]), kind, rekey))
