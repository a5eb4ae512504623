"""Controller and agents across the lab: enrollment over the underlay (one node
behind NAT), netmaps, `skylan status`, and riding out a controller restart."""

from __future__ import annotations

from pathlib import Path

from skylan.lab import Host, Lab
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for


def test_agents_enroll_follow_netmaps_and_survive_controller_restart(
    lab: Lab, tmp_path: Path
) -> None:
    ctl = lab.add_host("ctl")
    hosts = [lab.add_host("a"), lab.add_host("b"), lab.add_host("c", nat=True)]
    sky = Deployment(tmp_path)
    controller = sky.start_controller(ctl)
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "3", "--json")["token"]
    for host in hosts:
        sky.join(host, token)

    def all_online() -> bool:
        nodes = sky.admin("node", "list", "--json")
        return len(nodes) == 3 and all(n["online"] and n["networks"] for n in nodes)

    wait_for("three nodes online", all_online)
    nodes = {n["name"]: n for n in sky.admin("node", "list", "--json")}
    assert nodes["c"]["endpoints"][0].startswith("198.19.")  # its own (private) view
    assert sorted(n["networks"][0]["ipv4"] for n in nodes.values()) == [
        "172.16.1.1",
        "172.16.1.2",
        "172.16.1.3",
    ]

    def sees_peers(host: Host, names: set[str]) -> bool:
        nets = sky.status(host)["networks"]
        return bool(nets) and {p["name"] for p in nets[0]["peers"]} == names

    wait_for("a sees b and c", lambda: sees_peers(hosts[0], {"b", "c"}))
    wait_for("c sees a and b", lambda: sees_peers(hosts[2], {"a", "b"}))
    human = sky.skylan(hosts[0], "status", "--state-dir", str(sky.state_dir(hosts[0])))
    assert "prod" in human and "172.16.1.2" in human

    # the controller goes away: agents keep their last netmap and say so
    controller.terminate()
    controller.wait(10)
    wait_for("a notices", lambda: sky.status(hosts[0])["last_error"])
    assert sees_peers(hosts[0], {"b", "c"})

    # it comes back (same data dir): agents resync and see new changes
    sky.start_controller(ctl)
    sky.admin("node", "rename", "b", "bravo")
    wait_for("a sees the rename", lambda: sees_peers(hosts[0], {"bravo", "c"}), timeout=45)
    assert sky.status(hosts[0])["last_error"] is None

    # deleting a node locks it out, and its agent leaves the mesh by itself
    sky.admin("node", "delete", "c")
    wait_for(
        "c's agent to remove its interface",
        lambda: "sky0" not in hosts[2].run(["ip", "-o", "link"]).stdout,
        timeout=45,
    )
    status = sky.status(hosts[2])
    assert status["networks"] == [] and "re-enroll" in status["last_error"]
    wait_for("a forgets c", lambda: sees_peers(hosts[0], {"bravo"}), timeout=30)
