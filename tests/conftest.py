"""Suite-wide configuration: e2e tests need root and network namespaces."""

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
    probe = "skl-probe-capability"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return f"cannot create network namespaces: {made.stderr.decode().strip()}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _namespaces_usable()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)
