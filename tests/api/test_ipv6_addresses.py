"""Static IPv6 addresses for ports and IPv6 gateway routes through the API."""

from __future__ import annotations

from .conftest import Api
from .helpers import enrolled, netmap_until, network


def test_static_ipv6_and_ipv6_routes(api: Api) -> None:
    network(api, cidr6="fd00:1::/64")
    web = enrolled(api, "web", networks=["prod"])
    enrolled(api, "gw", networks=["prod"])
    ports = "/api/v1/networks/prod/ports"
    port = api.ok(api.patch(f"{ports}/web", {"ipv6": "fd00:1::1:1"}))
    assert (port["ipv6"], port["ipv6_static"]) == ("fd00:1::1:1", "fd00:1::1:1")
    for body, status, msg in [
        ({"ipv6": "fd00:1::5"}, 422, "derived from 172.16.1.0/24; use fd00:1::100 or above"),
        ({"ipv6": "fd00:2::1:1"}, 422, "not in fd00:1::/64"),
        ({"ipv6": "10.0.0.1"}, 422, "not an IPv6 address"),
    ]:
        r = api.patch(f"{ports}/gw", body)
        assert r.status_code == status and msg in r.json()["error"], (body, r.text)
    r = api.patch(f"{ports}/gw", {"ipv6": "fd00:1::1:1"})
    assert r.status_code == 409 and "already taken" in r.json()["error"]
    nm = netmap_until(
        api, web, lambda m: m["networks"] and m["networks"][0]["peers"][1]["port"]["ipv6"]
    )
    by_name = {p["name"]: p["port"]["ipv6"] for p in nm["networks"][0]["peers"]}
    assert by_name == {"web": "fd00:1::1:1", "gw": "fd00:1::2"}
    back = api.ok(api.patch(f"{ports}/web", {"ipv6": None}))
    assert (back["ipv6"], back["ipv6_static"]) == ("fd00:1::1", None)

    route = api.ok(
        api.post("/api/v1/networks/prod/routes", {"prefix": "fd10::/64", "via": "gw"}), 201
    )
    nm = netmap_until(api, web, lambda m: m["networks"] and m["networks"][0]["routes"])
    (info,) = nm["networks"][0]["routes"]
    assert info["id"] == route["id"] and info["via_ipv6"] == "fd00:1::2"
    network(api, name="v4only", cidr4="10.9.0.0/24")
    enrolled(api, "gw4", networks=["v4only"])
    r = api.post("/api/v1/networks/v4only/routes", {"prefix": "fd10::/64", "via": "gw4"})
    assert r.status_code == 422 and "no IPv6 prefix" in r.json()["error"]
    r = api.post("/api/v1/networks/v4only/ports", {"node": "web", "ipv6": "fd00:9::1"})
    assert r.status_code == 422 and "no IPv6 prefix" in r.json()["error"]
    r = api.post(
        "/api/v1/networks/prod/cloak-rules",
        {"protocol": "tcp", "port_from": 22, "source_cidr": "2001:db8:7::/48"},
    )
    assert r.status_code == 201 and r.json()["source_cidr"] == "2001:db8:7::/48"
