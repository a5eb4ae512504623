"""Waiting for a condition in a lab, never for a fixed time: on a loaded
machine everything takes longer, and a fixed sleep is either too short or
wasted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from skylan.lab.errors import LabError


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (LabError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.3)
    raise LabError(f"timed out waiting for {what}; last: {last!r}")
