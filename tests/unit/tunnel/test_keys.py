from __future__ import annotations

from pathlib import Path

import pytest

from skylan.tunnel.keys import KeyFileError, StaticKeypair, decode_public, encode_public


def test_key_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "state" / "node.key"
    pair = StaticKeypair.load_or_create(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert StaticKeypair.load_or_create(path) == pair
    assert decode_public(encode_public(pair.public)) == pair.public


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o640, 0o660])
def test_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.key"
    StaticKeypair.generate().save(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        StaticKeypair.load(path)


def test_malformed_key_file(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_text("not base64!\n")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a skylan private key"):
        StaticKeypair.load(path)
    with pytest.raises(KeyFileError, match="no such key file"):
        StaticKeypair.load(tmp_path / "missing.key")


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
