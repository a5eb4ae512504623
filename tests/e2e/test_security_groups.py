"""Security groups enforced by the receiving nodes, proven with nmap, ping
and curl through a gateway; the dry run's answer always agrees with them."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from skylan.lab import Host, Lab
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for

from .test_gateway_cloak import LAN, LAN_HOST, curl, deploy

PORTS = (22, 5432, 8080, 9999)  # b listens on 5432 and 8080; 22 and 9999 are closed

DRY_RUN = """
import json, os, sys
from skylan.client import Skylan
with Skylan(os.environ["SKYLAN_URL"], os.environ["SKYLAN_TOKEN"],
            fingerprint=os.environ["SKYLAN_FINGERPRINT"]) as sky:
    out = []
    for source, target, protocol, port in json.loads(sys.argv[1]):
        answer = sky.check_reachability("prod", source, target, protocol, port)
        out.append(answer.allowed)
print(json.dumps(out))
"""


def dry_run(sky: Deployment, questions: list[tuple[str, str, str, int | None]]) -> list[bool]:
    """The controller's answers (through the SDK, one process for all)."""
    assert sky.controller_host is not None
    res = sky.controller_host.run(
        [sys.executable, "-c", DRY_RUN, json.dumps(questions)], env=sky.admin_env(), timeout=60
    )
    assert res.ok, res.stderr
    answers: list[bool] = json.loads(res.stdout)
    return answers


def scan(host: Host, address: str) -> dict[int, str]:
    """nmap's verdict per port: open, closed (a RST came back) or filtered."""
    res = host.run(
        [
            "nmap",
            "-Pn",
            "-n",
            "-sS",
            "--max-retries",
            "1",
            "--host-timeout",
            "30s",
            "-p",
            ",".join(map(str, PORTS)),
            address,
        ],
        timeout=60,
    )
    assert res.ok, res.stderr
    found = {int(p): state for p, state in re.findall(r"^(\d+)/tcp\s+(\S+)", res.stdout, re.M)}
    assert set(found) == set(PORTS), res.stdout
    return found


def agrees(sky: Deployment, hosts: dict[str, Host], source: str, address: str) -> dict[int, str]:
    """nmap from ``source`` to b and the dry run agree on every port."""
    seen = scan(hosts[source], address)
    said = dry_run(sky, [(source, "b", "tcp", port) for port in PORTS])
    for port, allowed in zip(PORTS, said, strict=True):
        # let in: open or closed (b answered); dropped: filtered
        assert (seen[port] != "filtered") == allowed, (source, port, seen, said)
    return seen


def test_security_groups_agree_with_nmap_ping_and_a_gateway(lab: Lab, tmp_path: Path) -> None:
    sky, hosts = deploy(lab, tmp_path, ("a", "b", "c"))
    a, b, c = hosts["a"], hosts["b"], hosts["c"]
    sky.admin("node", "tag", "a", "web")
    sky.admin("node", "tag", "b", "db")
    ip = {n["name"]: n["networks"][0]["ipv4"] for n in sky.admin("node", "list", "--json")}
    b.spawn(
        [
            sys.executable,
            "-c",
            "import socket, time\n"
            "s = [socket.create_server(('0.0.0.0', p)) for p in (5432, 8080)]\n"
            "time.sleep(3600)",
        ]
    )
    wait_for("b's listeners", lambda: b.run(["ss", "-ltn", "sport = :8080"]).stdout.count("LISTEN"))

    # allow (the default): everything gets through, and the dry run says so
    seen = agrees(sky, hosts, "c", ip["b"])
    assert seen == {22: "closed", 5432: "open", 8080: "open", 9999: "closed"}

    sky.admin(
        "policy", "allow", "prod", "tcp", "--port", "5432", "--from", "tag:web", "--to", "tag:db"
    )
    sky.admin("policy", "allow", "prod", "icmp", "--from", "node:c")
    sky.admin("policy", "default", "prod", "deny")
    # every change is in the audit log, with who made it, and so is each first contact
    audit = sky.admin("audit", "--action", "security_rule.", "--json")["events"]
    assert len(audit) == 2 and {e["actor"] for e in audit} == {"bootstrap-admin"}, audit

    def first_contacts() -> list[str]:
        events = sky.admin("audit", "--action", "node.first_contact", "--json")["events"]
        return sorted(e["target"] for e in events)

    # (written with the heartbeats, which the controller stores in batches)
    assert wait_for("the first contacts", lambda: first_contacts() == ["a", "b", "c"], 30)
    wait_for(
        "b to guard its interface",
        lambda: "guard-sky0" in b.run(["nft", "list", "table", "inet", "skylan"]).stdout,
    )
    seen = agrees(sky, hosts, "a", ip["b"])
    assert seen == {22: "filtered", 5432: "open", 8080: "filtered", 9999: "filtered"}
    seen = agrees(sky, hosts, "c", ip["b"])
    assert set(seen.values()) == {"filtered"}
    # icmp from c only; a's own answers come back (stateful) though nothing lets b in to a
    assert dry_run(sky, [("c", "b", "icmp", None), ("a", "b", "icmp", None)]) == [True, False]
    assert c.ping(ip["b"]) and not a.ping(ip["b"])
    assert not b.ping(ip["a"])
    # a member cannot borrow an allowed member's address: c takes a's as its own
    c.run(["ip", "address", "add", f"{ip['a']}/32", "dev", "sky0"], check=True)
    spoof = (
        "import socket, sys\n"
        "s = socket.socket()\n"
        "s.settimeout(2)\n"
        "s.bind((sys.argv[1], 0))\n"
        "s.connect((sys.argv[2], 5432))"
    )
    assert not c.run([sys.executable, "-c", spoof, ip["a"], ip["b"]], timeout=10).ok
    c.run(["ip", "address", "del", f"{ip['a']}/32", "dev", "sky0"], check=True)

    # a change reaches b within the netmap's delay, and the dry run follows it
    rule = sky.admin(
        "policy",
        "allow",
        "prod",
        "tcp",
        "--port",
        "8080",
        "--from",
        "any",
        "--to",
        "tag:db",
        "--json",
    )
    wait_for("8080 open to c", lambda: scan(c, ip["b"])[8080] == "open", timeout=15)
    seen = agrees(sky, hosts, "c", ip["b"])
    assert seen == {22: "filtered", 5432: "filtered", 8080: "open", 9999: "filtered"}
    sky.admin("policy", "remove", "prod", rule["id"])
    wait_for("8080 closed to c again", lambda: scan(c, ip["b"])[8080] == "filtered", timeout=15)

    # forwarded traffic: c, a gateway to its office LAN, lets only the web tier through
    lan = lab.add_office_lan("c", prefix=LAN)
    log = (tmp_path / "web.log").open("wb")
    lan.spawn(
        [sys.executable, "-m", "http.server", "8080", "--bind", "0.0.0.0"], stdout=log, stderr=log
    )
    sky.admin("gateway", "add", "prod", LAN, "--via", "c")
    sky.admin(
        "policy", "allow", "prod", "tcp", "--port", "8080", "--from", "tag:web", "--to", "node:c"
    )
    url = f"http://{LAN_HOST}:8080/"
    assert wait_for("a reaches the LAN through c", lambda: curl(a, url), timeout=30)
    # asked about the LAN host itself, the dry run answers with the gateway's rules
    questions = [("a", LAN_HOST, "tcp", 8080), ("b", LAN_HOST, "tcp", 8080)]
    assert dry_run(sky, questions) == [True, False]
    assert not curl(b, url)
    # and the answer to a's own request is an established flow through c
    sky.admin("policy", "default", "prod", "allow")
    assert wait_for("b reaches the LAN once the policy allows", lambda: curl(b, url), timeout=15)
    assert "security group" not in sky.skylan(b, "status", "--state-dir", str(sky.state_dir(b)))
