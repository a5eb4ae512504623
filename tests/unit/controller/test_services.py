"""The controller's service layer without HTTP: each call on a real SQLite
database, the in-memory state brought up to date from the change rows as the
feed does it, and the typed errors the API turns into 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from skylan.controller.service import cloak, enrollment, gateways, networks, tokens
from skylan.controller.service.enrollment import Caller
from skylan.controller.service.errors import Conflict, Invalid, NotFound, Refused
from skylan.controller.state import loader
from skylan.controller.state.store import State
from skylan.controller.storage.database import make_engine, migrate, write_session_factory
from skylan.controller.storage.tables import JoinTokenRow
from skylan.model.agentapi import EnrollRequest
from skylan.model.requests import CloakRuleCreate, NetworkCreate, RouteCreate, TokenCreate
from skylan.tunnel.keys import StaticKeypair

FINGERPRINT = "ab" * 32


class Controller:
    """A database, the state read from it, and the last change applied."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.state = State()
        self.applied = 0

    def write(self, work: object) -> object:
        with self.sessions() as db, db.begin():
            result = work(db)  # type: ignore[operator]
        self.catch_up()
        return result

    def catch_up(self) -> None:
        with self.sessions() as db:
            changes = loader.load_changes(db, self.applied)
        self.state.apply(changes.loaded)
        self.applied = max(self.applied, changes.last)

    def enroll(self, token: str, hostname: str, key: str | None = None) -> object:
        body = EnrollRequest(
            token=token,
            public_key=key or StaticKeypair.generate().public_b64,
            hostname=hostname,
            endpoints=["198.18.0.1:51820"],
        )
        caller = Caller(FINGERPRINT, "198.18.0.1")
        return self.write(lambda db: enrollment.enroll(db, self.state, body, caller))


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[Controller]:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    try:
        yield Controller(write_session_factory(engine))
    finally:
        engine.dispose()


def make_network(ctl: Controller, name: str = "prod", cidr4: str = "10.8.0.0/24") -> str:
    body = NetworkCreate(name=name, cidr4=cidr4)
    net_id = ctl.write(lambda db: networks.create(db, ctl.state, body))
    assert isinstance(net_id, str)
    return net_id


def join_token(ctl: Controller, **kw: object) -> str:
    body = TokenCreate(networks=["prod"], **kw)  # type: ignore[arg-type]
    _, token = ctl.write(lambda db: tokens.create_join_token(db, ctl.state, body, FINGERPRINT))  # type: ignore[misc]
    return str(token)


def test_enrolment_makes_a_node_with_a_port_in_one_transaction(ctl: Controller) -> None:
    net_id = make_network(ctl)
    answer = ctl.enroll(join_token(ctl), "web")
    node_id = answer.node_id  # type: ignore[attr-defined]
    assert ctl.state.nodes[node_id].name == "web"
    port = ctl.state.members[net_id][node_id]
    assert port.ipv4 == "10.8.0.1"
    # a second machine with the same hostname gets another name and address
    other = ctl.enroll(join_token(ctl), "web")
    assert ctl.state.nodes[other.node_id].name == "web-2"  # type: ignore[attr-defined]
    assert ctl.state.members[net_id][other.node_id].ipv4 == "10.8.0.2"  # type: ignore[attr-defined]


def test_enrolment_refusals_are_typed_and_change_nothing(ctl: Controller) -> None:
    make_network(ctl)
    once = join_token(ctl, max_uses=1)
    key = StaticKeypair.generate().public_b64
    ctl.enroll(once, "a", key)
    before = (len(ctl.state.nodes), len(ctl.state.ports), ctl.applied)
    with pytest.raises(Refused, match="used up"):
        ctl.enroll(once, "b")
    with pytest.raises(Conflict, match="already enrolled"):
        ctl.enroll(join_token(ctl), "c", key)
    with pytest.raises(Refused, match="another controller"):
        wrong = join_token(ctl).replace(FINGERPRINT, "cd" * 32)
        ctl.enroll(wrong, "d")
    assert (len(ctl.state.nodes), len(ctl.state.ports), ctl.applied) == before


def test_an_unlimited_tokens_uses_count_what_a_batch_committed(ctl: Controller) -> None:
    """A batch of enrolments counts its unlimited token's uses once, at
    commit: an enrolment rolled back in its savepoint (as the writer does
    with a batch where one write failed) takes none, even when it failed after
    its node was made, and a transaction rolled back takes none either."""
    make_network(ctl, cidr4="10.8.0.0/30")  # two addresses
    key = StaticKeypair.generate().public_b64
    caller = Caller(FINGERPRINT, "198.18.0.1")

    def body(token: str, name: str, public_key: str | None = None) -> EnrollRequest:
        return EnrollRequest(
            token=token,
            public_key=public_key or StaticKeypair.generate().public_b64,
            hostname=name,
            endpoints=["198.18.0.1:51820"],
        )

    def uses() -> list[int]:
        with ctl.sessions() as db:
            return list(db.scalars(select(JoinTokenRow.uses).order_by(JoinTokenRow.created_at)))

    unlimited = join_token(ctl, max_uses=None)
    refused = []
    with ctl.sessions() as db, db.begin():
        # b: a's key (refused before its node is made); x: no address left
        # (refused after its node was made, in the same savepoint)
        for name, public_key in (("a", key), ("b", key), ("c", None), ("x", None)):
            try:
                with db.begin_nested():
                    enrollment.enroll(db, ctl.state, body(unlimited, name, public_key), caller)
            except Conflict as exc:
                refused.append((name, str(exc)))
    ctl.catch_up()
    assert [name for name, _ in refused] == ["b", "x"]
    assert "no free addresses" in refused[1][1]
    assert sorted(n.name for n in ctl.state.nodes.values()) == ["a", "c"]
    assert uses() == [2]
    waiting = join_token(ctl, max_uses=None, needs_approval=True)  # takes no address
    with ctl.sessions() as db:
        enrollment.enroll(db, ctl.state, body(waiting, "d"), caller)
        db.rollback()
        enrollment.enroll(db, ctl.state, body(waiting, "e"), caller)
        db.commit()
    ctl.catch_up()
    assert sorted(n.name for n in ctl.state.nodes.values()) == ["a", "c", "e"]
    assert uses() == [2, 1]


def test_routes_and_cloak_rules_belong_to_their_network(ctl: Controller) -> None:
    prod = make_network(ctl)
    make_network(ctl, "dev", "10.9.0.0/24")
    node = ctl.enroll(join_token(ctl), "gw").node_id  # type: ignore[attr-defined]
    route = RouteCreate(prefix="192.168.50.0/24", via=node)
    route_id = ctl.write(lambda db: gateways.create(db, ctl.state, "prod", route))
    assert [r.prefix for r in ctl.state.routes[prod].values()] == ["192.168.50.0/24"]
    with pytest.raises(Conflict, match="already goes via"):
        ctl.write(lambda db: gateways.create(db, ctl.state, "prod", route))
    with pytest.raises(Invalid, match="overlaps the network"):
        bad = RouteCreate(prefix="10.8.0.0/25", via=node)
        ctl.write(lambda db: gateways.create(db, ctl.state, "prod", bad))
    rule = CloakRuleCreate(protocol="tcp", port_from=22, port_to=22, source_cidr="198.51.100.0/24")
    rule_id = ctl.write(lambda db: cloak.create(db, ctl.state, "prod", rule))
    assert list(ctl.state.rules[prod]) == [rule_id]
    # another network's row is not found through this one
    with pytest.raises(NotFound, match="route"):
        ctl.write(lambda db: gateways.delete(db, ctl.state, "dev", str(route_id)))
    with pytest.raises(NotFound, match="cloak rule"):
        ctl.write(lambda db: cloak.delete(db, ctl.state, "dev", str(rule_id)))
    ctl.write(lambda db: gateways.delete(db, ctl.state, "prod", str(route_id)))
    ctl.write(lambda db: cloak.delete(db, ctl.state, "prod", str(rule_id)))
    assert not ctl.state.routes[prod] and not ctl.state.rules[prod]


def test_memory_equals_a_fresh_load_after_the_changes(ctl: Controller) -> None:
    make_network(ctl)
    for name in ("a", "b", "c"):
        ctl.enroll(join_token(ctl), name)
    with ctl.sessions() as db:
        fresh = State()
        fresh.apply(loader.load_everything(db).loaded)
    assert fresh.nodes == ctl.state.nodes and fresh.ports == ctl.state.ports
    assert fresh.networks == ctl.state.networks
