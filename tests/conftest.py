"""Suite-wide configuration: e2e tests need root and network namespaces, and
run one at a time.

``make test`` runs the suite on two pytest-xdist workers (``-n 2``). The
scheduler below sends every test under tests/e2e/ and tests/integration/ to
one worker as a single unit, so the labs and the data-plane processes run one
after another as in a serial run, while the other worker takes the unit, API
and fuzz tests module by module. Two labs never run at once, nor a lab beside
a test that times worker processes (a hung lane replaced within 15 s failed
once beside a lab's iperf3); they share the CPU only with the lighter tests.
(xdist's own ``--dist loadgroup`` does not group anything under pytest 9.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

# the tests that build labs or start data-plane processes: one after another
SERIAL_DIRS = ("tests/e2e/", "tests/integration/")
SERIAL = "serial"


def _serial(nodeid: str) -> bool:
    return nodeid.startswith(SERIAL_DIRS)


def _namespaces_usable() -> str | None:
    """None if e2e tests can run here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "e2e tests need root (network namespaces)"
    if shutil.which("ip") is None:
        return "e2e tests need iproute2 (run `make test`, which installs it)"
    probe = f"skl-probe-{os.getpid()}"  # each xdist worker probes on its own
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return f"cannot create network namespaces: {made.stderr.decode().strip()}"
    return None


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class LabsApart(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if _serial(nodeid):
                return SERIAL  # one unit: in turn, on one worker
            return str(super()._split_scope(nodeid))

    return LabsApart(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # the serial ones first: under xdist their unit, the longest, starts at once
    items.sort(key=lambda item: not _serial(item.nodeid))
    reason = _namespaces_usable()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)
