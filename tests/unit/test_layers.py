"""The layer map of docs/development.md, enforced: every import of one skylan
package from another must point down the map, the sans-I/O layers must not
reach for the OS, and the web and command-line frameworks stay in their layers.

Read from the source with ``ast`` (nothing is imported), so a violation names
the file and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "skylan"

# package -> the skylan packages it may import (docs/development.md, "Layers")
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "privatefile": set(),
    "selfsigned": {"privatefile"},
    "pinning": {"model"},
    "tunnel": {"model"},
    "switch": {"model"},
    "dataplane": {"model", "tunnel", "switch"},
    "hostnet": {"model", "dataplane"},
    "agent": {"model", "privatefile", "pinning", "tunnel", "switch", "dataplane", "hostnet"},
    "client": {"model", "pinning"},
    "controller": {"model", "privatefile", "pinning", "selfsigned"},
    "lab": {"model", "privatefile", "controller"},
    "relay": {"model", "privatefile", "pinning", "selfsigned", "tunnel", "dataplane"},
    "cli": {
        "model",
        "privatefile",
        "selfsigned",
        "pinning",
        "tunnel",
        "switch",
        "dataplane",
        "hostnet",
        "agent",
        "client",
        "controller",
        "lab",
        "relay",
    },
    "__main__": {"cli"},
    "__init__": set(),
}
# the sans-I/O core: bytes and time in, bytes and events out
SANS_IO = {"model", "tunnel", "switch"}
OS_MODULES = {"socket", "asyncio", "selectors", "subprocess", "fcntl", "pyroute2", "httpx"}
FRAMEWORKS = {
    "typer": {"cli"},
    "rich": {"cli"},
    "fastapi": {"controller"},
    "jinja2": {"controller"},
}


def imports(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def violations(package: str, source: str, name: str) -> list[str]:
    wrong = []
    for line, module in imports(source):
        parts = module.split(".")
        if parts[0] == "skylan" and len(parts) > 1:
            target = parts[1]
            if target != package and target not in ALLOWED[package]:
                wrong.append(f"{name}:{line} imports {module} ({package} -> {target})")
        elif package in SANS_IO and parts[0] in OS_MODULES:
            wrong.append(f"{name}:{line}: sans-I/O {package} imports {module}")
        elif parts[0] in FRAMEWORKS and package not in FRAMEWORKS[parts[0]]:
            wrong.append(f"{name}:{line}: {module} belongs in {sorted(FRAMEWORKS[parts[0]])}")
    return wrong


def package_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_package_has_a_place_on_the_map() -> None:
    assert {package_of(p) for p in sources()} <= set(ALLOWED)


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down_the_layer_map(path: Path) -> None:
    wrong = violations(package_of(path), path.read_text(), path.name)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("tunnel", "from skylan.dataplane.lane import Dataplane"),
        ("dataplane", "from skylan.hostnet import links"),
        ("agent", "import skylan.controller.app"),
        ("switch", "import socket"),
        ("tunnel", "from asyncio import Queue"),
        ("agent", "import typer"),
        ("client", "from fastapi import FastAPI"),
    ],
)
def test_the_contract_catches_an_import_against_it(package: str, source: str) -> None:
    assert violations(package, source, "x.py")


# Inside the tunnel: the engine's parts share a peer table and call only
# downwards (docs/development.md, "The tunnel engine's parts"); the modules
# they build on (sessions, Noise, the wire format, ...) import none of them.
TUNNEL_PARTS = {
    "peertable": 0,
    "paths": 1,
    "handshakes": 2,
    "sending": 3,
    "receiving": 4,
    "timers": 4,
    "engine": 5,
}


def tunnel_violations(module: str, source: str) -> list[str]:
    rank = TUNNEL_PARTS.get(module, -1)
    wrong = []
    for line, imported in imports(source):
        parts = imported.split(".")
        if parts[:2] != ["skylan", "tunnel"] or len(parts) < 3:
            continue
        target = TUNNEL_PARTS.get(parts[2], -1)
        if target >= 0 and target >= rank:
            wrong.append(f"tunnel/{module}.py:{line} imports {imported}")
    return wrong


@pytest.mark.parametrize("path", sorted((SRC / "tunnel").glob("*.py")), ids=lambda p: p.name)
def test_the_tunnel_engines_parts_call_only_downwards(path: Path) -> None:
    wrong = tunnel_violations(path.stem, path.read_text())
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("handshakes", "from skylan.tunnel.sending import Sender"),
        ("timers", "from skylan.tunnel.receiving import Receiver"),
        ("session", "from skylan.tunnel.peertable import PeerTable"),
        ("sending", "import skylan.tunnel.engine"),
    ],
)
def test_the_tunnel_contract_catches_an_upward_import(module: str, source: str) -> None:
    assert tunnel_violations(module, source)
