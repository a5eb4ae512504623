"""The on-disk record of a live lab, so that a lab whose owner died can be
found and removed by another process (the reaper or ``skylan lab clean``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from skylan.lab import naming


@dataclass
class TrackedProcess:
    pid: int
    start_time: int  # /proc/PID/stat field 22: tells a reused PID from ours


@dataclass
class LabState:
    lab_id: str
    owner_pid: int
    netns: list[str] = field(default_factory=list)
    processes: list[TrackedProcess] = field(default_factory=list)

    def save(self) -> None:
        path = naming.state_file(self.lab_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def load(cls, lab_id: str) -> LabState | None:
        try:
            raw = json.loads(naming.state_file(lab_id).read_text())
        except (OSError, ValueError):
            return None
        return cls(
            lab_id=raw["lab_id"],
            owner_pid=int(raw["owner_pid"]),
            netns=list(raw.get("netns", [])),
            processes=[TrackedProcess(**p) for p in raw.get("processes", [])],
        )

    def remove(self) -> None:
        naming.state_file(self.lab_id).unlink(missing_ok=True)


def known_lab_ids() -> set[str]:
    ids: set[str] = set()
    if naming.STATE_DIR.is_dir():
        ids.update(p.stem for p in naming.STATE_DIR.glob("*.json"))
    return ids
