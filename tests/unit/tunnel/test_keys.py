"""Key pairs, lane keys and public key encodings."""

from __future__ import annotations

import pytest

from skylan.model.publickey import decode_public, encode_public
from skylan.tunnel.keys import StaticKeypair


def test_dh_agrees() -> None:
    a, b = StaticKeypair.generate(), StaticKeypair.generate()
    assert a.dh(b.public) == b.dh(a.public)


@pytest.mark.parametrize("text", ["", "AAAA", "@@@@", encode_public(bytes(31))])
def test_bad_public_keys(text: str) -> None:
    with pytest.raises(ValueError, match="public key"):
        decode_public(text)


def test_lane_keys_are_stable_distinct_and_usable() -> None:
    node, other = StaticKeypair.generate(), StaticKeypair.generate()
    assert node.lane(0) is node
    lanes = [node.lane(i) for i in range(1, 9)]
    assert [StaticKeypair.from_private(node.private).lane(i) for i in range(1, 9)] == lanes
    publics = {node.public, other.lane(1).public} | {k.public for k in lanes}
    assert len(publics) == 10  # no lane collides with its node or another node's lane
    # a lane key is an ordinary X25519 identity: both sides agree on the DH
    assert lanes[0].dh(other.public) == other.dh(lanes[0].public)
