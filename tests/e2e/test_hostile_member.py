"""A netmap with hostile members: keys that admit no shared secret (all zeros,
a point of order 8), a member claiming the receiving node's own key, a key that
is not base64 and a MAC that is not one. Listed before the good peer, each used
to stop the data plane's netmap (and with it every later peer's tunnel and
broadcasts) with a raw exception. Now each is skipped and named in the status,
and the good peers ping each other: ARP, a broadcast, goes out past them.
"""

from __future__ import annotations

from pathlib import Path

from skylan.lab import Lab
from skylan.lab.waiting import wait_for
from skylan.tunnel.keys import StaticKeypair
from tests.e2e import netmapdriver
from tests.netmaps import netmap, peer

ZERO = "A" * 43 + "="
ORDER_8 = "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA="


def test_hostile_members_are_skipped_and_the_rest_keep_working(lab: Lab, tmp_path: Path) -> None:
    a, b = lab.add_host("a"), lab.add_host("b")
    keys = {n: StaticKeypair.generate() for n in ("a", "b")}
    good = {
        "a": peer("a", keys["a"].public_b64, "172.16.9.1", a.underlay_ip),
        "b": peer("b", keys["b"].public_b64, "172.16.9.2", b.underlay_ip),
    }
    nowhere = "198.18.1.250"  # inside the lab's underlay; nobody answers there
    for name, host in (("a", a), ("b", b)):
        other = "b" if name == "a" else "a"
        hostile = [
            peer("zero", ZERO, "172.16.9.10", nowhere),
            peer("order8", ORDER_8, "172.16.9.11", nowhere),
            peer("mirror", keys[name].public_b64, "172.16.9.12", nowhere),
            peer("garbled", "not base64!", "172.16.9.13", nowhere),
            peer("badmac", StaticKeypair.generate().public_b64, "172.16.9.14", nowhere, "zz"),
        ]
        nm = netmap(name, [*hostile, good[name], good[other]])
        netmapdriver.start(host, tmp_path, name, keys[name], nm)

    for name in ("a", "b"):
        netmapdriver.wait_started(tmp_path, name)
    # ping resolves the other's MAC by ARP first: a broadcast to every member
    wait_for("a -> b over the overlay", lambda: a.ping("172.16.9.2"), timeout=20)
    assert b.ping("172.16.9.1")
    for name in ("a", "b"):
        other = "b" if name == "a" else "a"
        st = wait_for(
            f"{name}'s status to show the tunnel",
            lambda n=name, o=other: (
                (s := netmapdriver.status(tmp_path, n))["peers"][o]["established"] and s
            ),
        )
        assert set(st["bad_peers"]) == {"zero", "order8", "mirror", "garbled", "badmac"}, st
        assert set(st["peers"]) == {other}
