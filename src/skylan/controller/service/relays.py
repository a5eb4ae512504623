"""Relays: the administrator's list (added with a credential, shown with
what each carried), and each relay's sync: it says its key and its traffic,
and learns the public keys that may use it.

A relay's key enters every approved node's netmap once the relay has said
it (a change, like any other); its traffic counters and last contact are
plain writes, read back from the database for the list, so every replica
shows the same figures whichever replica the relay talks to.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller.auth import hash_secret
from skylan.controller.changes import record_change
from skylan.controller.service.errors import Conflict, NotFound
from skylan.controller.state.store import State
from skylan.controller.storage.tables import RelayRow
from skylan.model.api import RelayOut
from skylan.model.relayapi import RelaySync, RelaySyncAnswer
from skylan.model.requests import RelayCreate

CREDENTIAL_PREFIX = "skyrelay_"
ONLINE_WINDOW_S = 30.0  # relays sync every 5 s


def create(db: Session, body: RelayCreate) -> tuple[str, str]:
    """A new relay: its id and its credential (shown this once)."""
    credential = CREDENTIAL_PREFIX + secrets.token_urlsafe(32)
    row = RelayRow(name=body.name, address=body.address, credential_hash=hash_secret(credential))
    db.add(row)
    try:
        db.flush()
    except IntegrityError:
        raise Conflict(f"a relay named {body.name!r} exists already") from None
    record_change(db, relays=[row.id])
    return row.id, credential


def delete(db: Session, state: State, ident: str) -> None:
    row = db.get(RelayRow, ident) or db.scalar(select(RelayRow).where(RelayRow.name == ident))
    if row is None:
        raise NotFound(f"relay {ident!r} not found")
    db.delete(row)
    record_change(db, relays=[row.id])


def listed(db: Session) -> list[RelayOut]:
    now = datetime.now(UTC)
    out = []
    for row in db.scalars(select(RelayRow).order_by(RelayRow.name)):
        seen = row.last_seen.replace(tzinfo=UTC) if row.last_seen is not None else None
        out.append(
            RelayOut(
                id=row.id,
                name=row.name,
                address=row.address,
                public_key=row.public_key,
                tls_port=row.tls_port,
                created_at=row.created_at.replace(tzinfo=UTC),
                last_seen=seen,
                online=seen is not None and (now - seen).total_seconds() < ONLINE_WINDOW_S,
                nodes=row.nodes,
                forwarded_bytes=row.forwarded_bytes,
                forwarded_packets=row.forwarded_packets,
                dropped=row.dropped,
            )
        )
    return out


def report(db: Session, state: State, relay_id: str, body: RelaySync) -> None:
    """What a relay said of itself; its key, when new, is a change."""
    row = db.get(RelayRow, relay_id)
    if row is None:
        raise NotFound("this relay was deleted")
    if body.public_key in state.node_by_key or body.public_key in state.lane_key_owner:
        raise Conflict("that public key is a node's")
    row.last_seen = datetime.now(UTC)
    row.nodes = body.nodes
    row.forwarded_bytes = body.forwarded_bytes
    row.forwarded_packets = body.forwarded_packets
    row.dropped = body.dropped
    if row.public_key != body.public_key or row.tls_port != body.tls_port:
        row.public_key = body.public_key
        row.tls_port = body.tls_port
        record_change(db, relays=[row.id])


class AllowedKeys:
    """Every approved node's keys, as relays fetch them: rebuilt at most once
    per applied change, sent only to a relay that holds another version."""

    def __init__(self) -> None:
        self._at = -1
        self._version = ""
        self._keys: list[str] = []

    def answer(self, state: State, applied: int, held: str) -> RelaySyncAnswer:
        if applied != self._at:
            keys = sorted(
                key
                for node in state.nodes.values()
                if node.status == "approved"
                for key in (node.public_key, *node.lane_keys)
            )
            self._keys = keys
            self._version = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32]
            self._at = applied
        if held == self._version:
            return RelaySyncAnswer(keys_version=held, keys=None)
        return RelaySyncAnswer(keys_version=self._version, keys=self._keys)
