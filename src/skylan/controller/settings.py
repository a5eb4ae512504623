"""Where the controller keeps its state and how it is reached."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("/var/lib/skylan/controller")


@dataclass(frozen=True)
class ControllerSettings:
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None  # default: SQLite in data_dir
    public_url: str | None = None  # how agents reach us, for join commands
    tls_cert: Path | None = None  # default: self-signed in data_dir
    tls_key: Path | None = None
    coalesce_s: float = 0.2
    poll_interval_s: float = 2.0

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'controller.db'}"
