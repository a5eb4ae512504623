"""The host's desired configuration is computed without I/O: resolving the
controller's name is a separate, blocking step the agent runs off its loop."""

from __future__ import annotations

import socket

import pytest

from skylan.agent.hostconfig import HostConfig
from skylan.hostnet.interfaces import InterfaceInfo
from skylan.model.netmap import NetMap
from skylan.model.securitygroups import Match, SecurityRuleInfo
from tests.netmaps import netmap, peer

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


def test_a_guard_is_worked_out_once_per_netmap_and_again_for_a_new_one() -> None:
    """The agent works its host configuration out every 2 s; a guard over a large
    network is worked out only when a netmap brings a change."""
    rule = SecurityRuleInfo(
        id="r",
        protocol="tcp",
        port_from=22,
        source=Match(kind="tag", value="ops"),
        target=Match(kind="any"),
    )

    def policy(ops_tagged: list[str]) -> NetMap:
        peers = [
            peer(
                f"n{i}",
                "k" * 43 + "=",
                f"172.16.1.{i}",
                f"198.18.0.{i}",
                tags=["ops"] if f"n{i}" in ops_tagged else [],
            )
            for i in range(1, 4)
        ]
        return netmap(
            "n1", peers, cidr4="172.16.1.0/24", cloaked=True, policy="deny", security_rules=[rule]
        )

    config = HostConfig(51820, "https://198.18.0.9:8443")
    first = policy(["n2"])
    one = config.desired(first, {"net": "sky0"}, set(), ETH0)
    again = config.desired(first, {"net": "sky0"}, set(), ETH0)
    assert again == one and again.rules.guards[0] is one.rules.guards[0]  # not worked out again
    assert again.rules.peer_addresses == ("198.18.0.2", "198.18.0.3")
    (allowance,) = one.rules.guards[0].allowances
    assert {address for _, address in allowance.members} >= {"172.16.1.2"}
    retagged = config.desired(policy(["n3"]), {"net": "sky0"}, set(), ETH0)
    (allowance,) = retagged.rules.guards[0].allowances
    assert "172.16.1.3" in {a for _, a in allowance.members}
    assert "172.16.1.2" not in {a for _, a in allowance.members}
    # another interface for the same network is another guard
    moved = config.desired(first, {"net": "sky1"}, set(), ETH0)
    assert moved.rules.guards[0].interface == "sky1"
