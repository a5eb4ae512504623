"""Shortcuts for API tests: networks, tokens and enrolled nodes."""

from __future__ import annotations

from typing import Any

from skylan.tunnel.keys import StaticKeypair

from .conftest import Api


def network(api: Api, name: str = "prod", cidr4: str = "172.16.1.0/24", **kw: Any) -> Any:
    return api.ok(api.post("/api/v1/networks", {"name": name, "cidr4": cidr4, **kw}), 201)


def join_token(api: Api, **kw: Any) -> Any:
    return api.ok(api.post("/api/v1/tokens", kw), 201)


def enroll(api: Api, token: str, hostname: str = "node", **kw: Any) -> Any:
    body = {
        "token": token,
        "public_key": StaticKeypair.generate().public_b64,
        "hostname": hostname,
        "os": "Debian 12",
        "agent_version": "0.1.0",
        "endpoints": ["198.18.1.1:51820"],
        "interfaces": [{"name": "eth0", "addresses": ["198.18.1.1/16"], "default_route": True}],
        **kw,
    }
    return api.client.post("/api/v1/agent/enroll", json=body)


def enrolled(api: Api, hostname: str = "node", **token_kw: Any) -> dict[str, Any]:
    tok = join_token(api, **token_kw)
    out = api.ok(enroll(api, tok["token"], hostname), 201)
    out["auth"] = {"Authorization": f"Bearer {out['credential']}"}
    return dict(out)


def netmap_until(api: Api, node: dict[str, Any], pred: Any, timeout: float = 10) -> Any:
    """Follow the node's long-poll until ``pred(netmap)`` holds."""
    import time

    from skylan.model.netmap import NetMap

    deadline = time.monotonic() + timeout
    since = 0
    last = None
    held: NetMap | None = None
    while time.monotonic() < deadline:
        r = api.client.get(
            "/api/v1/agent/netmap",
            headers=node["auth"],
            params={"since": since, "timeout": max(deadline - time.monotonic(), 0)},
        )
        if r.status_code == 304:
            break
        assert r.status_code == 200, r.text
        held = NetMap.model_validate(r.json()).merged_with(held)  # as an agent does
        last = held.model_dump(mode="json")
        if pred(last):
            return last
        since = last["version"]
    raise AssertionError(f"netmap never satisfied the condition; last: {last}")
