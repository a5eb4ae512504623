"""Start ``netmap_node.py`` (a data plane driven by a hand-made netmap, no
controller) on a lab host, and read the status it writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from skylan.agent.state import save_key
from skylan.lab import Host
from skylan.lab.waiting import wait_for
from skylan.model.netmap import NetMap
from skylan.tunnel.keys import StaticKeypair
from tests.netmaps import PORT

DRIVER = Path(__file__).with_name("netmap_node.py")


def start(
    host: Host, tmp_path: Path, name: str, key: StaticKeypair, netmap: NetMap, *extra: str
) -> None:
    """Run the driver for ``name`` on ``host`` (``extra``: data plane, rekey
    time) and wait for its first status."""
    (tmp_path / f"{name}.json").write_text(netmap.model_dump_json())
    save_key(key, tmp_path / f"{name}.key")
    host.spawn(
        [
            sys.executable,
            str(DRIVER),
            str(tmp_path / f"{name}.key"),
            str(PORT),
            str(tmp_path / f"{name}.json"),
            str(tmp_path / f"{name}-status.json"),
            *extra,
        ],
        stderr=(tmp_path / f"{name}.log").open("wb"),
    )


def wait_started(tmp_path: Path, name: str) -> None:
    wait_for(f"{name}'s data plane", (tmp_path / f"{name}-status.json").exists)


def status(tmp_path: Path, name: str) -> Any:
    return json.loads((tmp_path / f"{name}-status.json").read_text())
