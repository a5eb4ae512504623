"""Removal of labs, used by ``Lab.close``, the reaper and ``skylan lab clean``.

Only objects carrying the lab prefix are touched: namespaces named
``skl-<id>-*`` and processes the lab recorded (checked by start time, so a
recycled PID is never killed) or found inside those namespaces.
"""

from __future__ import annotations

import os
import signal

from skylan.lab import naming, netns
from skylan.lab.procs import kill_pids, process_start_time, signal_group
from skylan.lab.state import LabState, known_lab_ids


def clean_lab(lab_id: str) -> list[str]:
    """Remove one lab completely; returns the namespaces removed."""
    state = LabState.load(lab_id)
    if state is not None:
        ours = [p.pid for p in state.processes if process_start_time(p.pid) == p.start_time]
        for pid in ours:
            signal_group(pid, signal.SIGTERM)
        kill_pids(ours)
    removed = []
    for name in netns.list_netns():
        if naming.lab_id_of(name) == lab_id:
            netns.delete_netns(name)
            removed.append(name)
    if state is not None:
        state.remove()
    return removed


def owner_alive(lab_id: str) -> bool:
    state = LabState.load(lab_id)
    if state is None or state.owner_pid <= 0:
        return False
    try:
        os.kill(state.owner_pid, 0)
    except ProcessLookupError:
        return False
    return True


def all_lab_ids() -> set[str]:
    ids = known_lab_ids()
    for name in netns.list_netns():
        lab_id = naming.lab_id_of(name)
        if lab_id is not None:
            ids.add(lab_id)
    return ids


def clean(*, include_live: bool = False) -> dict[str, list[str]]:
    """Remove labs whose owner is gone (or every lab with ``include_live``)."""
    removed: dict[str, list[str]] = {}
    for lab_id in sorted(all_lab_ids()):
        if include_live or not owner_alive(lab_id):
            removed[lab_id] = clean_lab(lab_id)
    return removed
