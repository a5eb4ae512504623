"""Reading the state's records from the database: everything at start, and
then what each batch of change rows names. Runs in worker threads."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from sys import intern
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, func, select, true
from sqlalchemy.orm import Session

from skylan.controller.state.liveness import Liveness, pack, pack_shared, shared
from skylan.controller.state.records import (
    ApiToken,
    CloakRule,
    DnsRecord,
    Network,
    Node,
    Port,
    Relay,
    Route,
    SecurityRule,
)
from skylan.controller.state.store import Loaded
from skylan.controller.storage.tables import (
    ApiTokenRow,
    ChangeRow,
    CloakRuleRow,
    DnsRecordRow,
    NetworkRow,
    NodeRow,
    PortRow,
    RelayRow,
    RouteRow,
    SecurityRuleRow,
    as_utc,
)
from skylan.model.netmap import Candidate
from skylan.model.securitygroups import Match, SecurityRuleInfo


@dataclass
class Changes:
    """A batch of change rows, and the rows they name."""

    last: int  # the newest change id read (the batch is empty if unchanged)
    ids: list[int] = field(default_factory=list)
    networks: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    relays: bool = False  # some relay changed (they are few: all are read again)
    loaded: Loaded = field(default_factory=Loaded)


def network(row: Any) -> Network:
    return Network(
        id=row.id,
        name=row.name,
        vni=row.vni,
        description=row.description,
        cidr4=row.cidr4,
        cidr6=row.cidr6,
        mtu=row.mtu,
        encrypted=row.encrypted,
        cloaked=row.cloaked,
        storm_pps=row.storm_pps,
        policy=row.policy,
        dns_domain=row.dns_domain,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def node(row: Any) -> Node:
    return Node(
        id=intern(row.id),
        name=row.name,
        public_key=row.public_key,
        credential_hash=row.credential_hash,
        status=intern(row.status),
        tags=tuple(row.tags),
        endpoints=tuple(row.endpoints),
        observed_ip=row.observed_ip,
        token_id=None if row.token_id is None else intern(row.token_id),
        enrolled_at=as_utc(row.enrolled_at),
        lane_keys=tuple(row.lane_keys),
        candidates=tuple(Candidate.model_validate(c) for c in row.candidates),
        contacted=row.first_contact_at is not None,
        join_networks=tuple(row.join_networks),
    )


# Every row read brings its own copy of each string. A node's id appears in its
# record, its ports and as the key of several indexes, a network's id in every
# port of it, a status or join token's id in thousands of nodes: interned, each
# is one string (85 bytes each copy of an id: a few hundred bytes a node, on
# every replica).


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def liveness(row: Any) -> Liveness:
    return Liveness(
        last_seen=as_utc(row.last_seen).timestamp() if row.last_seen else None,
        started_at=as_utc(row.agent_started_at).timestamp() if row.agent_started_at else None,
        os=shared(row.os),
        agent_version=shared(row.agent_version),
        interfaces=pack(_json(row.interfaces or [])),
        seen_ips=pack_shared(_json(row.seen_ips or {})),
    )


def port(row: Any) -> Port:
    return Port(
        id=row.id,
        network_id=intern(row.network_id),
        node_id=intern(row.node_id),
        mac=row.mac,
        ipv4=row.ipv4,
        ipv6=row.ipv6,
        extra_ips=tuple(row.extra_ips),
        created_at=as_utc(row.created_at),
    )


def route(row: Any) -> Route:
    return Route(
        id=row.id,
        network_id=row.network_id,
        prefix=row.prefix,
        via_port_id=row.via_port_id,
        metric=row.metric,
        masquerade=row.masquerade,
        created_at=as_utc(row.created_at),
    )


def cloak_rule(row: Any) -> CloakRule:
    return CloakRule(
        id=row.id,
        network_id=row.network_id,
        node_id=row.node_id,
        protocol=row.protocol,
        port_from=row.port_from,
        port_to=row.port_to,
        source_cidr=row.source_cidr,
        description=row.description,
        created_at=as_utc(row.created_at),
    )


def security_rule(row: Any) -> SecurityRule:
    return SecurityRule(
        network_id=row.network_id,
        info=SecurityRuleInfo(
            id=row.id,
            protocol=row.protocol,
            port_from=row.port_from,
            port_to=row.port_to,
            source=_match(row.source_kind, row.source_value, row.source_node_id),
            target=_match(row.target_kind, row.target_value, row.target_node_id),
        ),
        description=row.description,
        created_at=as_utc(row.created_at),
    )


def dns_record(row: Any) -> DnsRecord:
    return DnsRecord(
        id=row.id,
        network_id=row.network_id,
        name=row.name,
        address=row.address,
        created_at=as_utc(row.created_at),
    )


def _match(kind: str, value: str | None, node_id: str | None) -> Match:
    return Match(kind=kind, value=node_id if kind == "node" else value)


def api_token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        secret_hash=row.secret_hash,
        scope=row.scope,
        created_at=as_utc(row.created_at),
        revoked=row.revoked,
    )


def _chunks(ids: Iterable[str], size: int = 500) -> Iterable[list[str]]:
    batch: list[str] = []
    for item in ids:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# what memory never holds: read (and parsed) only when asked for
_NOT_LOADED = frozenset({"peer_status"})


def _rows(db: Session, table: Any, where: Any) -> Any:
    """Plain rows (attribute access like the ORM's, without building ORM
    objects): the feed reloads rows all the time, and only to copy them."""
    columns = [c for c in table.__table__.columns if c.name not in _NOT_LOADED]
    return db.execute(select(*columns).where(where))


def _within(ids: list[str] | None) -> Any:
    """A filter on a column: among ``ids``, or anything (None)."""

    def where(column: Any) -> ColumnElement[bool]:
        return column.in_(ids) if ids is not None else true()

    return where


def load_networks(db: Session, ids: Iterable[str] | None, into: Loaded) -> None:
    """Networks with their routes and rules; ``None``: every network."""
    wanted = None if ids is None else list(ids)
    for part in [None] if wanted is None else _chunks(wanted):
        if part is not None:
            for net_id in part:
                into.networks[net_id] = None
                into.routes[net_id] = []
                into.rules[net_id] = []
                into.security[net_id] = []
                into.dns[net_id] = []
        where = _within(part)
        for row in _rows(db, NetworkRow, where(NetworkRow.id)):
            into.networks[row.id] = network(row)
            into.routes.setdefault(row.id, [])
            into.rules.setdefault(row.id, [])
            into.security.setdefault(row.id, [])
            into.dns.setdefault(row.id, [])
        for r in _rows(db, RouteRow, where(RouteRow.network_id)):
            into.routes.setdefault(r.network_id, []).append(route(r))
        for c in _rows(db, CloakRuleRow, where(CloakRuleRow.network_id)):
            into.rules.setdefault(c.network_id, []).append(cloak_rule(c))
        for s in _rows(db, SecurityRuleRow, where(SecurityRuleRow.network_id)):
            into.security.setdefault(s.network_id, []).append(security_rule(s))
        for d in _rows(db, DnsRecordRow, where(DnsRecordRow.network_id)):
            into.dns.setdefault(d.network_id, []).append(dns_record(d))


def load_nodes(db: Session, ids: Iterable[str] | None, into: Loaded) -> None:
    """Nodes with their ports and liveness; ``None``: every node."""
    wanted = None if ids is None else list(ids)
    for part in [None] if wanted is None else _chunks(wanted):
        if part is not None:
            for node_id in part:
                into.nodes[node_id] = None
                into.ports[node_id] = []
        where = _within(part)
        for row in _rows(db, NodeRow, where(NodeRow.id)):
            into.nodes[row.id] = node(row)
            into.ports.setdefault(row.id, [])
            into.liveness[row.id] = liveness(row)
        for p in _rows(db, PortRow, where(PortRow.node_id)):
            into.ports.setdefault(p.node_id, []).append(port(p))


def relay(row: Any) -> Relay:
    return Relay(
        id=row.id,
        name=row.name,
        address=row.address,
        public_key=row.public_key,
        tls_port=row.tls_port,
        credential_hash=row.credential_hash,
        created_at=as_utc(row.created_at),
    )


def load_relays(db: Session, into: Loaded) -> None:
    into.relays = [relay(r) for r in _rows(db, RelayRow, true())]


def load_api_tokens(db: Session, into: Loaded) -> None:
    into.api_tokens = [api_token(r) for r in _rows(db, ApiTokenRow, true())]


def load_everything(db: Session) -> Changes:
    snapshot(db)
    last = db.scalar(select(func.max(ChangeRow.id))) or 0
    out = Changes(last)
    load_networks(db, None, out.loaded)
    load_nodes(db, None, out.loaded)
    load_api_tokens(db, out.loaded)
    load_relays(db, out.loaded)
    out.relays = True
    out.networks = set(out.loaded.networks)
    out.nodes = set(out.loaded.nodes)
    return out


def load_changes(db: Session, after: int, limit: int = 5000) -> Changes:
    """Change rows after ``after`` (at most ``limit``) and what they name."""
    snapshot(db)
    rows = db.execute(
        select(
            ChangeRow.id,
            ChangeRow.network_ids,
            ChangeRow.node_ids,
            ChangeRow.api_token_ids,
            ChangeRow.relay_ids,
        )
        .where(ChangeRow.id > after)
        .order_by(ChangeRow.id)
        .limit(limit)
    ).all()
    out = Changes(rows[-1].id if rows else after)
    tokens = False
    for change_id, nets, nodes, api_tokens, relays in rows:
        out.ids.append(change_id)
        out.networks.update(nets)
        out.nodes.update(nodes)
        tokens = tokens or bool(api_tokens)
        out.relays = out.relays or bool(relays)
    if out.networks:
        load_networks(db, sorted(out.networks), out.loaded)
    if out.nodes:
        load_nodes(db, sorted(out.nodes), out.loaded)
    if tokens:
        load_api_tokens(db, out.loaded)
    if out.relays:
        load_relays(db, out.loaded)
    return out


def load_seen_since(
    db: Session, since: float
) -> list[tuple[str, float | None, float | None, float | None]]:
    """(node, last seen, agent started, details changed) as unix times, of
    the nodes seen after ``since``: how a replica learns of heartbeats another
    replica received, without their details."""
    cutoff = datetime.fromtimestamp(since, UTC)
    query = select(
        NodeRow.id, NodeRow.last_seen, NodeRow.agent_started_at, NodeRow.details_at
    ).where(NodeRow.last_seen > cutoff)
    return [
        (node_id, _unix(seen), _unix(started), _unix(details))
        for node_id, seen, started, details in db.execute(query)
    ]


def load_details(db: Session, node_ids: Sequence[str]) -> dict[str, Liveness]:
    """The reported details of ``node_ids`` as the agents sent them (the JSON
    as text, not parsed: they are kept as bytes); not their tunnel lists."""
    out: dict[str, Liveness] = {}
    for at in range(0, len(node_ids), 500):
        query = select(
            NodeRow.id,
            NodeRow.os,
            NodeRow.agent_version,
            cast(NodeRow.interfaces, Text),
            cast(NodeRow.seen_ips, Text),
        ).where(NodeRow.id.in_(node_ids[at : at + 500]))
        for node_id, os_name, version, interfaces, seen in db.execute(query):
            out[node_id] = Liveness(
                os=shared(os_name),
                agent_version=shared(version),
                interfaces=pack((interfaces or "[]").encode()),
                seen_ips=pack_shared((seen or "{}").encode()),
            )
    return out


def load_tunnels(db: Session, node_ids: Sequence[str]) -> dict[str, bytes]:
    """The tunnel lists of ``node_ids`` as their agents sent them (JSON)."""
    out: dict[str, bytes] = {}
    for at in range(0, len(node_ids), 500):
        query = select(NodeRow.id, cast(NodeRow.peer_status, Text)).where(
            NodeRow.id.in_(node_ids[at : at + 500])
        )
        for node_id, tunnels in db.execute(query):
            if tunnels:
                out[node_id] = tunnels.encode()
    return out


def _unix(at: datetime | None) -> float | None:
    return as_utc(at).timestamp() if at is not None else None


def stats_seqs(db: Session) -> dict[str, int]:
    return {
        node_id: seq for node_id, seq in db.execute(select(NodeRow.id, NodeRow.stats_seq)) if seq
    }


def snapshot(db: Session) -> None:
    """Read the change rows and the data they name from one snapshot, so a
    version names exactly the data it was built from (PostgreSQL; SQLite
    reads from one snapshot per transaction anyway)."""
    if db.get_bind().dialect.name == "postgresql":
        db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
