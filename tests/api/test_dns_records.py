"""DNS: a network's domain and its names for other addresses, through the
API and into the netmap (on SQLite and PostgreSQL)."""

from __future__ import annotations

from .conftest import Api
from .helpers import enrolled, netmap_until, network

RECORDS = "/api/v1/networks/prod/dns-records"


def test_zone_records_and_netmap(api: Api) -> None:
    net = network(api, cidr6="fd00:1::/64")
    assert net["dns_domain"] == "skylan.internal" and net["dns_zone"] == "prod.skylan.internal"
    web = enrolled(api, "web", networks=["prod"])
    vip = api.ok(api.post(RECORDS, {"name": "VIP", "address": "172.16.1.100"}), 201)
    assert (vip["name"], vip["fqdn"]) == ("vip", "vip.prod.skylan.internal")
    api.ok(api.post(RECORDS, {"name": "db.primary", "address": "fd00:1::100"}), 201)
    for body, status, msg in [
        ({"name": "vip", "address": "172.16.1.101"}, 409, "already names"),
        ({"name": "web", "address": "172.16.1.101"}, 409, "name of a member"),
        ({"name": "far", "address": "10.0.0.1"}, 422, "is not in"),
        ({"name": "far", "address": "fd00:2::1"}, 422, "IPv6 prefix"),
        ({"name": "-x", "address": "172.16.1.5"}, 422, "name"),
        ({"name": "a b", "address": "172.16.1.5"}, 422, "name"),
        ({"name": "x", "address": "nope"}, 422, "not an IP address"),
        ({"name": "x"}, 422, "address"),
    ]:
        r = api.post(RECORDS, body)
        assert r.status_code == status and msg in r.json()["error"], (body, r.text)
    nm = netmap_until(
        api, web, lambda m: m["networks"] and len(m["networks"][0]["dns_records"]) == 2
    )
    section = nm["networks"][0]
    assert section["dns_zone"] == "prod.skylan.internal"
    assert section["dns_records"] == [
        {"name": "db.primary", "address": "fd00:1::100"},
        {"name": "vip", "address": "172.16.1.100"},
    ]
    listed = api.ok(api.get(RECORDS))
    assert [r["name"] for r in listed] == ["db.primary", "vip"]

    # another domain, then none
    api.ok(api.patch("/api/v1/networks/prod", {"dns_domain": "Corp.Example."}))
    assert api.ok(api.get("/api/v1/networks/prod"))["dns_zone"] == "prod.corp.example"
    assert api.ok(api.get(RECORDS))[1]["fqdn"] == "vip.prod.corp.example"
    r = api.patch("/api/v1/networks/prod", {"dns_domain": "bad..domain"})
    assert r.status_code == 422 and "dns_domain" in r.json()["error"]
    api.ok(api.patch("/api/v1/networks/prod", {"dns_domain": None}))
    netmap_until(api, web, lambda m: m["networks"] and m["networks"][0]["dns_zone"] is None)

    assert api.delete(f"{RECORDS}/{vip['id']}").status_code == 204
    assert api.delete(f"{RECORDS}/{vip['id']}").status_code == 404
    events = api.ok(api.get("/api/v1/audit", params={"action": "dns_record."}))["events"]
    assert {e["action"] for e in events} == {"dns_record.create", "dns_record.delete"}
    quiet = api.ok(
        api.post("/api/v1/networks", {"name": "quiet", "cidr4": "10.5.0.0/24", "dns_domain": None}),
        201,
    )
    assert quiet["dns_zone"] is None


def test_a_name_is_renamed_or_moved_by_its_name_or_id(api: Api) -> None:
    network(api, cidr6="fd00:1::/64")
    web = enrolled(api, "web", networks=["prod"])
    vip = api.ok(api.post(RECORDS, {"name": "vip", "address": "172.16.1.100"}), 201)
    api.ok(api.post(RECORDS, {"name": "db", "address": "172.16.1.50"}), 201)
    moved = api.ok(api.patch(f"{RECORDS}/VIP", {"name": "app", "address": "fd00:1::100"}))
    assert (moved["id"], moved["fqdn"], moved["address"]) == (
        vip["id"],
        "app.prod.skylan.internal",
        "fd00:1::100",
    )
    again = api.ok(api.patch(f"{RECORDS}/{vip['id']}", {"address": "172.16.1.101"}))
    assert (again["name"], again["address"]) == ("app", "172.16.1.101")
    assert api.ok(api.patch(f"{RECORDS}/app", {"name": "app"}))["name"] == "app"  # its own name
    for path, body, status, msg in [
        ("app", {"name": "db"}, 409, "already names"),
        ("app", {"name": "web"}, 409, "name of a member"),
        ("app", {"address": "10.0.0.1"}, 422, "is not in"),
        ("app", {"name": "-x"}, 422, "name"),
        ("app", {"address": "nope"}, 422, "not an IP address"),
        ("app", {"ttl": 5}, 422, "ttl"),
        ("nope", {"name": "x"}, 404, "not found"),
    ]:
        r = api.patch(f"{RECORDS}/{path}", body)
        assert r.status_code == status and msg in r.json()["error"], (path, body, r.text)
    nm = netmap_until(
        api,
        web,
        lambda m: (
            m["networks"]
            and {"name": "app", "address": "172.16.1.101"} in m["networks"][0]["dns_records"]
        ),
    )
    assert len(nm["networks"][0]["dns_records"]) == 2
    assert api.delete(f"{RECORDS}/DB").status_code == 204  # by name, too
    assert [r["name"] for r in api.ok(api.get(RECORDS))] == ["app"]
    # another network's name is not found through this one
    api.ok(api.post("/api/v1/networks", {"name": "other", "cidr4": "10.6.0.0/24"}), 201)
    assert api.patch(f"/api/v1/networks/other/dns-records/{vip['id']}", {}).status_code == 404
    events = api.ok(api.get("/api/v1/audit", params={"action": "dns_record.update"}))["events"]
    changes = [(e["before"], e["after"]) for e in events if e["target_id"] == vip["id"]]
    # what changed, and nothing for a rename to its own name
    assert sorted(changes, key=str) == sorted(
        [
            ({"name": "vip", "address": "172.16.1.100"}, {"name": "app", "address": "fd00:1::100"}),
            ({"address": "fd00:1::100"}, {"address": "172.16.1.101"}),
        ],
        key=str,
    ), changes
