"""The join token string a user copies: ``sky1.<cert sha256>.<secret>``.

Carrying the certificate fingerprint lets a fresh agent pin the controller
on first contact; the secret is what the controller stores hashed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

PREFIX = "sky1"
_FORMAT = re.compile(r"sky1\.([0-9a-f]{64})\.([A-Za-z0-9_-]{20,100})")


class JoinTokenFormatError(ValueError):
    pass


@dataclass(frozen=True)
class JoinToken:
    fingerprint: str
    secret: str

    def __str__(self) -> str:
        return f"{PREFIX}.{self.fingerprint}.{self.secret}"

    @classmethod
    def new(cls, fingerprint: str) -> JoinToken:
        return cls(fingerprint, secrets.token_urlsafe(32))

    @classmethod
    def parse(cls, text: str) -> JoinToken:
        match = _FORMAT.fullmatch(text.strip())
        if match is None:
            raise JoinTokenFormatError(
                "not a skylan join token (expected sky1.<fingerprint>.<secret>)"
            )
        return cls(match.group(1), match.group(2))
