"""Where the controller keeps its state and how it is reached."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from skylan.controller.lockout import LockoutPolicy

DEFAULT_DATA_DIR = Path("/var/lib/skylan/controller")
DEFAULT_MAX_BODY = 1 << 20  # bytes; larger request bodies get 413, unread


@dataclass(frozen=True)
class ControllerSettings:
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None  # default: SQLite in data_dir
    public_url: str | None = None  # how agents reach us, for join commands
    tls_cert: Path | None = None  # default: self-signed in data_dir
    tls_key: Path | None = None
    coalesce_s: float = 0.2
    poll_interval_s: float = 2.0
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_busy: int = 512  # requests in progress (long-polls apart) before 503s
    # concurrent transactions of writes that change the state (0: one; they
    # serialise on the change lock anyway, and one slot makes bigger batches)
    write_slots: int = 0
    flush_s: float = 10.0  # heartbeats are written this often
    stats_flush_s: float = 60.0  # and statistics this often (one row per minute's bucket)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)  # failed logins per source
    audit_days: float = 365.0  # audit-log events older than this are pruned

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'controller.db'}"


class ConfigError(Exception):
    """The controller cannot start as configured; the message says how to fix it."""


MIN_ADMIN_TOKEN_LEN = 32
MIN_ADMIN_TOKEN_DISTINCT = 12


def check_admin_token(secret: str) -> str:
    """A bootstrap admin token given by the operator must be hard to guess:
    every token skylan makes is 256-bit random, and one typed by hand must not
    be the weak link (``SKYLAN_ADMIN_TOKEN=a`` was accepted)."""
    if len(secret) < MIN_ADMIN_TOKEN_LEN or len(set(secret)) < MIN_ADMIN_TOKEN_DISTINCT:
        raise ConfigError(
            f"SKYLAN_ADMIN_TOKEN is too weak: use at least {MIN_ADMIN_TOKEN_LEN} random "
            "characters (e.g. skyadm_$(openssl rand -hex 32)), or leave it unset for a "
            "random one"
        )
    return secret
