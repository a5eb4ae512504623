"""The agent's state directory: its key, its credential, the last netmap.

Everything the agent needs to restart without the controller lives here, so
``skylan agent run`` resumes forwarding on the last netmap even when the
controller is unreachable.
"""

from __future__ import annotations

import base64
import json
import secrets
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from skylan.model.netmap import NetMap
from skylan.privatefile import write_private
from skylan.tunnel.keys import StaticKeypair


class NotEnrolled(Exception):
    """No enrollment in this state directory."""


class KeyFileError(Exception):
    """A key file is missing, malformed or readable by others."""


def save_key(pair: StaticKeypair, path: Path) -> None:
    """The private key (base64), readable by the owner only.

    A node's private key never leaves it; a key file that other users could
    read is refused by :func:`load_key`, as ssh does, because such a key must
    be assumed compromised.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, base64.b64encode(pair.private) + b"\n")


def load_key(path: Path) -> StaticKeypair:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: private key is accessible by other users "
            f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 {path}"
        )
    try:
        private = base64.b64decode(path.read_bytes().strip(), validate=True)
        return StaticKeypair.from_private(private)
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a skylan private key ({exc})") from None


def load_or_create_key(path: Path) -> StaticKeypair:
    if path.exists():
        return load_key(path)
    pair = StaticKeypair.generate()
    save_key(pair, path)
    return pair


@dataclass
class Enrollment:
    node_id: str
    name: str
    controller_url: str  # the first of controller_urls (what older agents stored)
    fingerprint: str
    credential: str
    listen_port: int
    controller_urls: list[str] = field(default_factory=list)  # replicas, in order

    @property
    def urls(self) -> list[str]:
        return self.controller_urls or [self.controller_url]


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def key_path(self) -> Path:
        return self.root / "node.key"

    def key(self) -> StaticKeypair:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return load_or_create_key(self.key_path)

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

    def enroll_request_id(self) -> str:
        """The id of this machine's enrolment request, kept until it succeeds:
        running ``skylan agent join`` again after a lost answer repeats the
        same request, which the controller then answers again."""
        path = self.root / "enroll-request"
        try:
            found = path.read_text().strip()
            if 16 <= len(found) <= 64:
                return found
        except OSError:
            pass
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        made = secrets.token_urlsafe(24)
        write_private(path, made)
        return made

    def enrolled(self) -> None:
        (self.root / "enroll-request").unlink(missing_ok=True)

    def stats_seq(self) -> int:
        """The last statistics report number used, so numbers keep increasing
        across restarts (the controller ignores a number it has seen)."""
        try:
            return int((self.root / "stats-seq").read_text())
        except (OSError, ValueError):
            return 0

    def save_stats_seq(self, seq: int) -> None:
        write_private(self.root / "stats-seq", str(seq))

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
