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
