"""The host's desired configuration is computed without I/O: resolving the
controller's name is a separate, blocking step the agent runs off its loop."""

from __future__ import annotations

import socket

import pytest

from skylan.agent.hostconfig import HostConfig
from skylan.hostnet.interfaces import InterfaceInfo
from tests.netmaps import netmap

NETMAP = netmap("n1", [], cidr4="172.16.1.0/24", cloaked=True)
ETH0 = [InterfaceInfo("eth0", "02:00:00:00:00:01", ["198.18.0.5/24"], True, True)]


def test_desired_never_resolves_and_resolving_fills_in_the_controller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_dns(host: str) -> str:
        raise AssertionError(f"desired() looked up {host}")

    monkeypatch.setattr(socket, "gethostbyname", no_dns)
    config = HostConfig(51820, "https://ctl.example:8443")
    before = config.desired(NETMAP, {"net": "sky0"}, set(), ETH0)
    assert before.rules.cloak_interfaces == ("eth0",) and before.rules.always_allow == ()

    monkeypatch.setattr(socket, "gethostbyname", lambda host: "198.18.0.9")
    assert config.resolve_controller() == "198.18.0.9"
    after = config.desired(NETMAP, {"net": "sky0"}, set(), ETH0)
    assert after.rules.always_allow == ("198.18.0.9",)


def test_an_unresolvable_controller_is_retried_later(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(host: str) -> str:
        raise socket.gaierror("no such name")

    monkeypatch.setattr(socket, "gethostbyname", fail)
    config = HostConfig(51820, "https://ctl.example:8443")
    assert config.resolve_controller() is None
    monkeypatch.setattr(socket, "gethostbyname", lambda host: "198.18.0.9")
    assert config.resolve_controller() == "198.18.0.9"
