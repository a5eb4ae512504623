"""Console pieces that need no server: asset pinning, error placement, the
gateway choice shown as 'active', and the display filters."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skylan.controller.console import vendor
from skylan.controller.console.apiclient import FORM, field_errors
from skylan.controller.console.pages import _rate, chosen_gateways
from skylan.controller.console.render import bits_per_second, duration, human_bytes
from skylan.model.api import Bucket, NodeOut, RouteOut, TotalStats


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _integrity(data: bytes) -> str:
    import base64
    import hashlib

    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_assets_are_unpacked_only_if_they_match_the_pin(tmp_path: Path) -> None:
    tgz = _tarball({"package/dist/x.min.js": b"console.log(1)"})
    asset = vendor.Asset("x", "1.0.0", _integrity(tgz), {"package/dist/x.min.js": "x.min.js"})
    vendor.unpack(asset, tgz, tmp_path)
    assert (tmp_path / "x.min.js").read_bytes() == b"console.log(1)"

    tampered = _tarball({"package/dist/x.min.js": b"steal()"})
    with pytest.raises(vendor.AssetError, match="integrity"):
        vendor.unpack(asset, tampered, tmp_path / "other")
    assert not (tmp_path / "other").exists()

    incomplete = vendor.Asset("x", "1.0.0", _integrity(tgz), {"package/dist/y.js": "y.js"})
    with pytest.raises(vendor.AssetError, match="has no"):
        vendor.unpack(incomplete, tgz, tmp_path)


def test_every_pinned_asset_is_installed() -> None:
    """``make`` fetched them; the console's pages load these files."""
    assert vendor.missing() == []
    for asset in vendor.ASSETS:
        assert asset.tarball_url.endswith(f"-{asset.version}.tgz")


def test_api_errors_go_next_to_their_field() -> None:
    assert field_errors({"error": "x", "detail": {"fields": ["cidr4: Value error, bad"]}}) == {
        "cidr4": "bad"
    }
    assert field_errors({"error": "taken", "detail": {"field": "ipv4"}}) == {"ipv4": "taken"}
    assert field_errors({"error": "no", "detail": {}}) == {FORM: "no"}
    assert field_errors({"error": "m", "detail": {"fields": ["whole model wrong"]}}) == {
        FORM: "whole model wrong"
    }
    assert FORM in field_errors(["not", "a", "dict"])


@given(
    st.recursive(
        st.none() | st.text() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_field_errors_never_raise(body: object) -> None:
    out = field_errors(body)
    assert out and all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())


def _node(name: str, online: bool) -> NodeOut:
    now = datetime.now(UTC)
    return NodeOut(
        id=name,
        name=name,
        public_key="k",
        status="approved",
        online=online,
        last_seen=now,
        uptime_s=None,
        agent_version="",
        os="",
        tags=[],
        endpoints=[],
        interfaces=[],
        enrolled_at=now,
        networks=[],
    )


def _route(rid: str, via: str, metric: int, prefix: str = "192.168.10.0/24") -> RouteOut:
    return RouteOut(
        id=rid,
        network_id="n",
        prefix=prefix,
        via_port_id="p",
        via_node=via,
        metric=metric,
        masquerade=True,
        created_at=datetime.now(UTC),
    )


def test_the_active_gateway_is_the_lowest_metric_online_one() -> None:
    nodes = {"c": _node("c", online=True), "d": _node("d", online=True)}
    routes = [_route("r1", "c", 100), _route("r2", "d", 50), _route("r3", "c", 10, "10.0.0.0/8")]
    assert chosen_gateways(routes, nodes) == {"r2", "r3"}
    nodes["d"] = _node("d", online=False)
    assert chosen_gateways(routes, nodes) == {"r1", "r3"}
    assert chosen_gateways([_route("r4", "gone", 1)], nodes) == set()


def test_display_filters() -> None:
    assert human_bytes(999) == "999 B" and human_bytes(1_500_000) == "1.5 MB"
    assert bits_per_second(66_200_000) == "66.2 Mbit/s" and bits_per_second(None) == "\N{EN DASH}"
    assert duration(59) == "59s" and duration(3_700) == "1h 1m" and duration(90_000) == "1d 1h"


def test_dashboard_rate_is_the_last_complete_minute_even_when_buckets_are_sparse() -> None:
    def bucket(minute: int, tx: int) -> Bucket:
        return Bucket(
            minute=minute, rx_bytes=0, tx_bytes=tx, rx_packets=0, tx_packets=tx // 100, drops=0
        )

    now = 100 * 60 + 30.0  # half-way through minute 100
    stats = TotalStats(minutes=5, nodes=1, buckets=[bucket(97, 600), bucket(99, 6000)])
    assert _rate(stats, now) == {"bytes": 100.0, "packets": 1.0}  # minute 99, not 97
    ongoing = TotalStats(minutes=5, nodes=1, buckets=[bucket(99, 6000), bucket(100, 60)])
    assert _rate(ongoing, now)["bytes"] == 100.0  # the filling minute 100 is not used
    assert _rate(TotalStats(minutes=5, nodes=1, buckets=[bucket(97, 600)]), now)["bytes"] == 0.0
