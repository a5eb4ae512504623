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

from skylan.controller.storage.tables import ApiTokenRow, NodeRow

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
    db: Session, name: str, scope: Scope, secret: str | None = None
) -> tuple[ApiTokenRow, str]:
    """Store a token; returns it with its secret (the only time that is available)."""
    secret = secret or new_secret()
    row = ApiTokenRow(name=name, secret_hash=hash_secret(secret), scope=scope.value)
    db.add(row)
    db.commit()
    return row, secret


def token_by_secret(db: Session, secret: str) -> ApiTokenRow | None:
    """The live (not revoked) API token whose secret this is."""
    row = db.scalar(select(ApiTokenRow).where(ApiTokenRow.secret_hash == hash_secret(secret)))
    if row is None or row.revoked:
        return None
    return row


def new_node_credential() -> str:
    return CREDENTIAL_PREFIX + secrets.token_urlsafe(32)


def node_id_by_credential(db: Session, credential_hash: str) -> str | None:
    node_id: str | None = db.scalar(
        select(NodeRow.id).where(NodeRow.credential_hash == credential_hash)
    )
    return node_id


def has_tokens(db: Session) -> bool:
    return db.scalar(select(ApiTokenRow.id).limit(1)) is not None
