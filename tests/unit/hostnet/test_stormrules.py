"""The storm-control table for kernel VXLAN interfaces, as text."""

from __future__ import annotations

import pytest

from skylan.hostnet import stormrules as storm


def test_each_limited_interface_gets_an_ingress_and_an_egress_chain() -> None:
    script = storm.render({"sky1": 200, "sky0": 0, "sky2": 50})
    assert script.startswith("table netdev skylan_storm {")
    assert 'hook ingress device "sky1"' in script and 'hook egress device "sky1"' in script
    assert "limit rate over 200/second burst 200 packets counter drop" in script
    assert 'device "sky2"' in script and 'device "sky0"' not in script  # 0: no limit
    assert script.count("meta pkttype { broadcast, multicast }") == 4


def test_interface_names_are_checked() -> None:
    with pytest.raises(ValueError, match="interface name"):
        storm.render({'sky0"; flush ruleset; "': 10})
