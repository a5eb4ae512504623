"""The agent's key file: private to its owner, refused when others can read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from skylan.agent.state import KeyFileError, load_key, load_or_create_key, save_key
from skylan.model.publickey import decode_public, encode_public
from skylan.tunnel.keys import StaticKeypair


def test_key_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "state" / "node.key"
    pair = load_or_create_key(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_or_create_key(path) == pair
    assert decode_public(encode_public(pair.public)) == pair.public


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o640, 0o660])
def test_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.key"
    save_key(StaticKeypair.generate(), path)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key(path)


def test_malformed_key_file(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_text("not base64!\n")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a skylan private key"):
        load_key(path)
    with pytest.raises(KeyFileError, match="no such key file"):
        load_key(tmp_path / "missing.key")
