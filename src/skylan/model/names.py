"""What a name may be: networks, nodes (and the hostnames they enroll with), API
tokens and tags all go through :func:`identifier`.

Names end up in interface descriptions, nftables comments, DNS labels and log
lines, so each is checked whole with ``fullmatch``: ``re.match(...$)`` also
accepted a trailing newline, and "a1\\n" enrolled beside "a1".
"""

from __future__ import annotations

import re
from enum import Enum


class Kind(Enum):
    NAME = (
        re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"),
        "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    )
    TAG = (re.compile(r"[A-Za-z0-9_.:=-]{1,64}"), "use 1-64 letters, digits and _.:=-")


def identifier(value: str, kind: Kind = Kind.NAME) -> str:
    """``value`` if it is a valid name of ``kind``; ValueError saying what is."""
    pattern, rule = kind.value
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        what = "tag" if kind is Kind.TAG else "name"
        raise ValueError(f"{what} {value!r}: {rule}")
    return value
