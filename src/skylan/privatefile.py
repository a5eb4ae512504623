"""Writing secrets to disk: readable by the owner only, and never half-written.

Keys, credentials and tokens all go through :func:`write_private`: the file is
created 0600 before any byte is written (no window where another user could
read it) and renamed into place, so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes | str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to an existing file
        os.write(fd, raw)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter, whatever the umask
    (or the mode it had before)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """``path`` exists (created empty if not) and is readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path
