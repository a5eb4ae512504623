"""The agent's state directory: its key, its credential, the last netmap.

Everything the agent needs to restart without the controller lives here, so
``skylan agent run`` resumes forwarding on the last netmap even when the
controller is unreachable.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from skylan.model.netmap import NetMap
from skylan.privatefile import write_private
from skylan.tunnel.keys import StaticKeypair

DEFAULT_STATE_DIR = Path("/var/lib/skylan/agent")


class NotEnrolled(Exception):
    """No enrollment in this state directory."""


@dataclass
class Enrollment:
    node_id: str
    name: str
    controller_url: str
    fingerprint: str
    credential: str
    listen_port: int


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def key_path(self) -> Path:
        return self.root / "node.key"

    def key(self) -> StaticKeypair:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return StaticKeypair.load_or_create(self.key_path)

    def save_enrollment(self, enrollment: Enrollment) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.root / "node.json", json.dumps(asdict(enrollment), indent=2))

    def enrollment(self) -> Enrollment:
        path = self.root / "node.json"
        if not path.exists():
            raise NotEnrolled(f"{self.root}: not enrolled; run `skylan agent join URL TOKEN`")
        try:
            return Enrollment(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise NotEnrolled(f"{path} is damaged ({exc}); enroll again") from None

    def save_netmap(self, netmap: NetMap) -> None:
        write_private(self.root / "netmap.json", netmap.model_dump_json())

    def netmap(self) -> NetMap | None:
        path = self.root / "netmap.json"
        try:
            return NetMap.model_validate_json(path.read_text())
        except (OSError, ValueError):
            return None

    @property
    def status_path(self) -> Path:
        return self.root / "status.json"
