"""API tokens and node credentials: the secret is shown once and only its
SHA-256 is stored.

Secrets are 256-bit random, so a plain hash (not a slow password hash) is
enough to make a stolen database useless for logging in.
"""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from skylan.controller.changes import record_change
from skylan.controller.storage.tables import ApiTokenRow

TOKEN_PREFIX = "skyadm_"
CREDENTIAL_PREFIX = "skynode_"


class Scope(StrEnum):
    ADMIN = "admin"
    READ = "read"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_api_token(
    db: Session, name: str, scope: Scope, secret: str | None = None, *, commit: bool = True
) -> tuple[ApiTokenRow, str]:
    """Store a token; returns it with its secret (the only time that is available)."""
    secret = secret or new_secret()
    row = ApiTokenRow(name=name, secret_hash=hash_secret(secret), scope=scope.value)
    db.add(row)
    db.flush()
    record_change(db, api_tokens=[row.id])  # so every replica's state knows it
    if commit:
        db.commit()
    return row, secret


def new_node_credential() -> str:
    return CREDENTIAL_PREFIX + secrets.token_urlsafe(32)


def has_tokens(db: Session) -> bool:
    return db.scalar(select(ApiTokenRow.id).limit(1)) is not None
