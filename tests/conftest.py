"""Suite-wide configuration: e2e tests need root and network namespaces, and
run one at a time.

``make test`` runs the suite on two pytest-xdist workers with ``--dist
loadgroup``. Every e2e test is in the group ``lab``, so one worker runs them
in turn, as a serial run would, while the other takes the rest (unit, API and
fuzz tests). Two labs never run at once; a lab shares the CPU with the other
worker's tests, which its timing targets (a failover under 3 s) allow for."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


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


@pytest.hookimpl(trylast=True)  # after tests/e2e/conftest.py marks its tests e2e
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lab = pytest.mark.xdist_group("lab")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(lab)
    reason = _namespaces_usable()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)
