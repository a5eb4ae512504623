"""Where the CLI finds its controller: flags, environment, then a config file
written by ``skylan login`` (``~/.config/skylan/cli.json``, mode 0600)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from skylan.client import Skylan
from skylan.privatefile import write_private


def config_path() -> Path:
    override = os.environ.get("SKYLAN_CONFIG")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "skylan" / "cli.json"


@dataclass
class CliConfig:
    url: str
    token: str
    fingerprint: str | None = None

    def save(self) -> Path:
        path = config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(asdict(self)))
        return path


class NotLoggedIn(Exception):
    pass


def load() -> CliConfig:
    data: dict[str, str | None] = {}
    path = config_path()
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            raise NotLoggedIn(f"{path} is not valid JSON; run `skylan login` again") from None
    url = os.environ.get("SKYLAN_URL") or data.get("url")
    token = os.environ.get("SKYLAN_TOKEN") or data.get("token")
    fingerprint = os.environ.get("SKYLAN_FINGERPRINT") or data.get("fingerprint")
    if not url or not token:
        raise NotLoggedIn(
            "no controller configured: run `skylan login URL --token TOKEN` "
            "or set SKYLAN_URL and SKYLAN_TOKEN"
        )
    return CliConfig(url, token, fingerprint)


def client() -> Skylan:
    cfg = load()
    return Skylan(cfg.url, cfg.token, fingerprint=cfg.fingerprint)
