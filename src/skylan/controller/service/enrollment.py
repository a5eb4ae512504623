"""Enrolment: a join token, a public key and a hostname become a node with a
credential, and (unless the token needs approval) its ports.

One transaction: the token's use, the node and its ports commit together or
not at all. A repeat of the same request (the agent lost the answer; it sends
the same random ``request_id``, which only it knows) is answered again with a
new credential instead of a conflict, and takes no second use, as long as the
node has not called in since and it comes within ten minutes.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from skylan.controller import audit
from skylan.controller.auth import hash_secret, new_node_credential
from skylan.controller.changes import record_change
from skylan.controller.service.errors import Conflict, Refused
from skylan.controller.service.ports import join_networks
from skylan.controller.service.tokens import token_state
from skylan.controller.state.store import State
from skylan.controller.storage.commithooks import at_commit
from skylan.controller.storage.tables import JoinTokenRow, NodeRow, as_utc, new_id
from skylan.controller.storage.unique import insert_if_free
from skylan.model.agentapi import EnrollRequest, EnrollResponse
from skylan.model.jointoken import JoinToken, JoinTokenFormatError

RETRY_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Caller:
    fingerprint: str  # of this controller's certificate
    address: str | None  # where the request came from (the node's NAT, if any)


NAMES_TAKEN = "skylan_names_taken"  # Session.info: node names this transaction gave out
UNCOUNTED = "skylan_uncounted_uses"  # Session.info: unlimited token id -> nodes it enrolled


def _count_uses(db: Session) -> None:
    """Add this transaction's enrolments to their unlimited tokens' uses: one
    statement per token and batch, not one per enrolment (a batch's writes
    run one after another, and a statement each adds up). Only the nodes the
    transaction still holds count: an enrolment rolled back in its savepoint
    took no use."""
    for token_id, node_ids in db.info.pop(UNCOUNTED, {}).items():
        made = db.scalar(select(func.count()).select_from(NodeRow).where(NodeRow.id.in_(node_ids)))
        if made:
            db.execute(
                update(JoinTokenRow)
                .where(JoinTokenRow.id == token_id)
                .values(uses=JoinTokenRow.uses + made)
                .execution_options(synchronize_session=False)
            )


def _unique_name(state: State, hostname: str, taken: set[str]) -> str:
    """A free name from memory (and this transaction's own); the unique
    constraint settles a race."""
    name, n = hostname, 1
    while name in state.node_by_name or name in taken:
        n += 1
        suffix = f"-{n}" if n < 50 else f"-{secrets.token_hex(3)}"
        name = hostname[: 64 - len(suffix)] + suffix
    return name


def _token(db: Session, token: JoinToken) -> JoinTokenRow:
    """The token's row, read once per transaction: a batch of enrolments with
    one token (an autoscaling group, say) does not read it for each. Its use
    count is taken by a separate atomic update, not from this row."""
    key = hash_secret(token.secret)
    seen: dict[str, JoinTokenRow] = db.info.setdefault("skylan_join_tokens", {})
    row = seen.get(key)
    if row is None:
        row = db.scalar(select(JoinTokenRow).where(JoinTokenRow.secret_hash == key))
        if row is None:
            raise Refused("unknown join token")
        seen[key] = row
    return row


def _retry(
    db: Session, state: State, body: EnrollRequest, row: JoinTokenRow
) -> EnrollResponse | None:
    """The answer to a repeated enrolment, or None if this is not one."""
    if body.public_key not in state.node_by_key:
        return None  # (a concurrent first enrolment fails on the unique key instead)
    node = db.scalar(select(NodeRow).where(NodeRow.public_key == body.public_key))
    if node is None:
        return None
    enrolled = as_utc(node.enrolled_at)
    live = state.liveness.get(node.id)
    seen = live.last_seen if live is not None and live.last_seen is not None else 0.0
    same = (
        body.request_id is not None
        and node.enroll_request_hash is not None
        and hmac.compare_digest(node.enroll_request_hash, hash_secret(body.request_id))
        and node.token_id == row.id
    )
    untouched = seen <= enrolled.timestamp() + 1 and datetime.now(UTC) - enrolled < RETRY_WINDOW
    if not (same and untouched):
        raise Conflict(
            "a node with this public key is already enrolled; delete it first "
            "or keep using its credential"
        )
    credential = new_node_credential()
    node.credential_hash = hash_secret(credential)
    record_change(db, nodes=[node.id])
    return EnrollResponse(
        node_id=node.id, name=node.name, status=node.status, credential=credential
    )


def enroll(db: Session, state: State, body: EnrollRequest, caller: Caller) -> EnrollResponse:
    try:
        token = JoinToken.parse(body.token)
    except JoinTokenFormatError as exc:
        raise Refused(str(exc)) from None
    if not hmac.compare_digest(token.fingerprint, caller.fingerprint):
        # a token names the certificate its agent pins; one naming another is
        # not ours to honour (its agent never checked it was talking to us)
        raise Refused("this join token names another controller's certificate")
    row = _token(db, token)
    repeated = _retry(db, state, body, row)
    if repeated is not None:
        return repeated
    status = token_state(row)
    if status != "active":
        raise Refused(f"this join token is {status}; create a new one")
    if row.max_uses is not None:
        # take one use atomically: concurrent enrolments cannot overspend a token
        taken = db.execute(
            update(JoinTokenRow)
            .where(JoinTokenRow.id == row.id)
            .where(JoinTokenRow.uses < JoinTokenRow.max_uses)
            .values(uses=JoinTokenRow.uses + 1)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise Refused("this join token is used up; create a new one")
    if body.public_key in state.lane_key_owner:
        raise Conflict("this public key is another node's worker lane key")
    credential = new_node_credential()
    now = datetime.now(UTC)
    names = db.info.setdefault(NAMES_TAKEN, set())  # by this transaction's enrolments
    pending = row.needs_approval
    node_id = new_id()
    node: dict[str, Any] = {
        "id": node_id,
        "name": _unique_name(state, body.hostname, names),
        "public_key": body.public_key,
        "credential_hash": hash_secret(credential),
        "status": "pending" if pending else "approved",
        "os": body.os,
        "agent_version": body.agent_version,
        "tags": [],
        "interfaces": [i.model_dump() for i in body.interfaces],
        "endpoints": body.endpoints,
        "token_id": row.id,
        "enrolled_at": now,
        "last_seen": now,
        "agent_started_at": now,
        "observed_ip": caller.address,
        "peer_status": [],
        "seen_ips": {},
        "lane_keys": [],
        "candidates": [],
        # addresses are taken from the pools at approval, not before
        "join_networks": list(row.network_ids) if pending else [],
        "stats_seq": 0,
        "enroll_request_hash": hash_secret(body.request_id) if body.request_id else None,
    }
    for attempt in range(8):
        if insert_if_free(db, NodeRow, node):
            break
        if db.scalar(select(NodeRow.id).where(NodeRow.public_key == body.public_key)):
            raise Conflict("a node with this public key is already enrolled")
        # another machine with the same hostname enrolled at this moment
        suffix = f"-{secrets.token_hex(2)}"
        node["name"] = _unique_name(state, body.hostname[: 64 - len(suffix)] + suffix, names)
        if attempt == 7:
            raise Conflict("could not find a free node name; retry")
    names.add(node["name"])
    if row.max_uses is None:
        # nothing to overspend: the uses are counted once for the whole batch
        db.info.setdefault(UNCOUNTED, {}).setdefault(row.id, []).append(node_id)
        at_commit(db, UNCOUNTED, _count_uses)
    if pending:
        record_change(db, nodes=[node_id])
    else:
        join_networks(db, state, node_id, list(row.network_ids), fresh=True)
        record_change(db, nodes=[node_id], networks=row.network_ids)
    who = audit.Actor("join-token", row.description or row.id, caller.address or "")
    shown = {k: node[k] for k in ("name", "status", "public_key", "os", "endpoints")}
    audit.record(
        db,
        who,
        "node.enroll",
        target_id=node_id,
        target=node["name"],
        after=shown | {"join_token": row.id, "networks": list(row.network_ids)},
    )
    return EnrollResponse(
        node_id=node_id, name=node["name"], status=node["status"], credential=credential
    )
