"""``/api/v1/agent/*``: what node agents call.

Enrollment takes a join token; everything else authenticates with the
per-node credential returned at enrollment, and a node can only ever read
its own netmap.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller.api import deps, validators
from skylan.controller.api.deps import Db
from skylan.controller.api.errors import ApiError, conflict
from skylan.controller.api.tokens import token_state
from skylan.controller.auth import hash_secret, new_node_credential
from skylan.controller.changes import record_change
from skylan.controller.service.ports import join_networks
from skylan.controller.stats import MAX_RTT_MS, CounterOverflow, StatsReport, ingest
from skylan.controller.storage.tables import JoinTokenRow, NodeRow
from skylan.model.api import EnrollResponse
from skylan.model.jointoken import JoinToken, JoinTokenFormatError
from skylan.model.netmap import MAX_LANES
from skylan.tunnel.keys import decode_public

router = APIRouter(prefix="/agent", tags=["agent"])


def _all_parse(values: list[str], parse: Callable[[str], object], what: str) -> list[str]:
    """``values`` if ``parse`` accepts each, else a ValueError naming the first bad one."""
    for v in values:
        try:
            parse(v)
        except ValueError:
            raise ValueError(f"{v!r} is not {what}") from None
    return values


class InterfaceReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=32)
    mac: str | None = Field(None, max_length=17)
    addresses: list[str] = Field(default_factory=list, max_length=64)
    default_route: bool = False

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        return _all_parse(values, ipaddress.ip_interface, "an address/prefix like 10.0.0.5/24")


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(max_length=300)
    public_key: str
    hostname: str
    os: str = Field("", max_length=200)
    agent_version: str = Field("", max_length=50)
    interfaces: list[InterfaceReport] = Field(default_factory=list, max_length=64)
    endpoints: list[str] = Field(default_factory=list, max_length=16)

    _hostname = field_validator("hostname")(validators.name)
    _endpoints = field_validator("endpoints")(lambda v: [validators.endpoint(e) for e in v])

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        decode_public(value)
        return value


MAX_UPTIME_S = 1e9  # 31 years: the bound of what a node may claim (1e12 overflowed a date)


class PeerStatusReport(BaseModel):
    """One tunnel as the agent sees it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    node_id: str = Field(max_length=36)
    established: bool = False
    endpoint: str | None = Field(None, max_length=64)
    handshake_age_s: float | None = Field(None, ge=0, le=MAX_UPTIME_S)
    rtt_ms: float | None = Field(None, ge=0, le=MAX_RTT_MS)
    dead: bool = False


def _ipv4_list(values: list[str]) -> list[str]:
    return _all_parse(values, ipaddress.IPv4Address, "an IPv4 address")


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    agent_version: str | None = Field(None, max_length=50)
    os: str | None = Field(None, max_length=200)
    uptime_s: float | None = Field(None, ge=0, le=MAX_UPTIME_S)
    interfaces: list[InterfaceReport] | None = Field(None, max_length=64)
    endpoints: list[str] | None = Field(None, max_length=16)
    peers: list[PeerStatusReport] | None = Field(None, max_length=10_000)
    seen_ips: dict[str, list[str]] | None = Field(
        None, max_length=1_000, description="per network id: IPv4s this node announced by ARP"
    )
    lane_keys: list[str] | None = Field(
        None,
        max_length=MAX_LANES - 1,
        description="public keys of the data-plane worker lanes 1..N-1 (lane 0 is public_key)",
    )

    _endpoints = field_validator("endpoints")(
        lambda v: None if v is None else [validators.endpoint(e) for e in v]
    )

    @field_validator("lane_keys")
    @classmethod
    def _lane_keys(cls, value: list[str] | None) -> list[str] | None:
        for key in value or ():
            decode_public(key)
        if value is not None and len(set(value)) != len(value):
            raise ValueError("lane keys must be distinct")
        return value

    @field_validator("seen_ips")
    @classmethod
    def _seen(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        for net_id, ips in value.items():
            if len(net_id) > 36 or len(ips) > 64:
                raise ValueError("at most 64 addresses per network id")
            _ipv4_list(ips)
        return value


def node_from_credential(db: Db, node_id: Annotated[str, Depends(deps.node_id)]) -> NodeRow:
    node = db.get(NodeRow, node_id)
    if node is None:  # deleted since the gate looked
        raise ApiError(401, "unknown or revoked node credential; re-enroll with a join token")
    return node


AgentNode = Annotated[NodeRow, Depends(node_from_credential)]


def _unique_name(db: Db, hostname: str) -> str:
    name, n = hostname, 1
    while db.scalar(select(NodeRow.id).where(NodeRow.name == name)):
        n += 1
        suffix = f"-{n}"
        name = hostname[: 64 - len(suffix)] + suffix
    return name


@router.post("/enroll", status_code=201)
def enroll(body: EnrollRequest, db: Db, request: Request) -> EnrollResponse:
    try:
        token = JoinToken.parse(body.token)
    except JoinTokenFormatError as exc:
        raise ApiError(401, str(exc)) from None
    if not hmac.compare_digest(token.fingerprint, request.app.state.cert_fingerprint):
        # a token names the certificate its agent pins; one naming another is
        # not ours to honour (its agent never checked it was talking to us)
        raise ApiError(401, "this join token names another controller's certificate")
    row = db.scalar(
        select(JoinTokenRow).where(JoinTokenRow.secret_hash == hash_secret(token.secret))
    )
    if row is None:
        raise ApiError(401, "unknown join token")
    state = token_state(row)
    if state != "active":
        raise ApiError(401, f"this join token is {state}; create a new one")
    # take one use atomically: concurrent enrollments cannot overspend a token
    taken = db.execute(
        update(JoinTokenRow)
        .where(JoinTokenRow.id == row.id)
        .where((JoinTokenRow.max_uses.is_(None)) | (JoinTokenRow.uses < JoinTokenRow.max_uses))
        .values(uses=JoinTokenRow.uses + 1)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        raise ApiError(401, "this join token is used up; create a new one")
    if db.scalar(select(NodeRow.id).where(NodeRow.public_key == body.public_key)):
        db.rollback()
        raise conflict(
            "a node with this public key is already enrolled; delete it first "
            "or keep using its credential"
        )
    if body.public_key in _lane_keys_in_use(db):
        db.rollback()
        raise conflict("this public key is another node's worker lane key")
    credential = new_node_credential()
    node = NodeRow(
        name=_unique_name(db, body.hostname),
        public_key=body.public_key,
        credential_hash=hash_secret(credential),
        status="pending" if row.needs_approval else "approved",
        os=body.os,
        agent_version=body.agent_version,
        interfaces=[i.model_dump() for i in body.interfaces],
        endpoints=body.endpoints,
        token_id=row.id,
        last_seen=datetime.now(UTC),
        agent_started_at=datetime.now(UTC),
        observed_ip=request.client.host if request.client else None,
    )
    for attempt in range(8):
        try:
            with db.begin_nested():
                db.add(node)
            break
        except IntegrityError:
            if db.scalar(select(NodeRow.id).where(NodeRow.public_key == body.public_key)):
                db.rollback()
                raise conflict("a node with this public key is already enrolled") from None
            # another machine with the same hostname enrolled at this moment
            suffix = f"-{secrets.token_hex(2)}"
            node.name = _unique_name(db, body.hostname[: 64 - len(suffix)] + suffix)
            if attempt == 7:
                db.rollback()
                raise conflict("could not find a free node name; retry") from None
    record_change(db, nodes=[node.id])
    if node.status == "approved":
        join_networks(db, node, row.network_ids)
    else:  # addresses are taken from the pools at approval, not before
        node.join_networks = list(row.network_ids)
    db.commit()  # the token's use, the node and its ports: all or nothing
    return EnrollResponse(
        node_id=node.id, name=node.name, status=node.status, credential=credential
    )


@router.get("/netmap", responses={304: {"description": "no newer netmap before the timeout"}})
async def netmap(
    request: Request,
    node_id: Annotated[str, Depends(deps.node_id)],
    since: Annotated[int, Query(ge=0)] = 0,
    timeout: Annotated[float, Query(ge=0, le=300)] = 30.0,
) -> Response:
    """Long-poll: answers at once if a netmap newer than ``since`` exists,
    otherwise when one appears, or with 304 after ``timeout`` seconds."""
    feed = request.app.state.feed
    # The gate checked the credential in the database for this very poll, so
    # deleting a node locks it out at once on every replica; no session is held
    # while the long-poll waits.
    body = await feed.wait(node_id, since, timeout)
    if body is None:
        return Response(status_code=304)
    return Response(body, media_type="application/json")


@router.post("/heartbeat")
def heartbeat(body: Heartbeat, node: AgentNode, db: Db, request: Request) -> dict[str, Any]:
    now = datetime.now(UTC)
    node.last_seen = now
    observed = request.client.host if request.client else None
    if observed != node.observed_ip:
        node.observed_ip = observed
        record_change(db, nodes=[node.id])  # cloaked peers must let it in
    if body.uptime_s is not None:
        node.agent_started_at = now - timedelta(seconds=body.uptime_s)
    if body.agent_version is not None:
        node.agent_version = body.agent_version
    if body.os is not None:
        node.os = body.os
    if body.interfaces is not None:
        node.interfaces = [i.model_dump() for i in body.interfaces]
    if body.peers is not None:
        node.peer_status = [p.model_dump() for p in body.peers]
    if body.seen_ips is not None:
        node.seen_ips = body.seen_ips
    if body.lane_keys is not None and body.lane_keys != list(node.lane_keys):
        _check_lane_keys(db, node, body.lane_keys)
        node.lane_keys = body.lane_keys
        record_change(db, nodes=[node.id])  # peers pair their lanes with the new ones
    if body.endpoints is not None and body.endpoints != list(node.endpoints):
        node.endpoints = body.endpoints
        record_change(db, nodes=[node.id])  # peers need the new endpoints
    db.commit()
    return {"status": node.status, "server_time": now.isoformat()}


def _lane_keys_in_use(db: Session, *, other_than: str | None = None) -> set[str]:
    """Every node's lane keys (but those of ``other_than``)."""
    rows = db.execute(select(NodeRow.id, NodeRow.lane_keys))
    return {key for node_id, keys in rows if node_id != other_than for key in keys or ()}


def _check_lane_keys(db: Session, node: NodeRow, keys: list[str]) -> None:
    """A lane key names the node to its peers' data planes, so it must be no
    other node's key: one node claiming another's would have peers attribute
    that node's traffic to it (and its own tunnels break)."""
    taken = _lane_keys_in_use(db, other_than=node.id) | {node.public_key}
    taken |= set(db.scalars(select(NodeRow.public_key).where(NodeRow.public_key.in_(keys))))
    for key in keys:
        if key in taken:
            raise conflict(f"lane key {key} is already a node's key")


@router.post("/stats", status_code=204)
def stats(body: StatsReport, node: AgentNode, db: Db) -> Response:
    try:
        ingest(db, node.id, body)
    except CounterOverflow as exc:
        raise ApiError(422, str(exc)) from None
    return Response(status_code=204)
