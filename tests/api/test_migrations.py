"""Upgrading a database made by an earlier skylan."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from skylan.controller.storage.database import alembic_config, make_engine


def test_pending_nodes_give_back_their_addresses_on_upgrade(database_url: str) -> None:
    """Before 0004 a pending node got its ports at enrollment; the upgrade
    turns them into the networks it joins when approved."""
    engine = make_engine(database_url)
    cfg = alembic_config(engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003")
        now = datetime.now(UTC)
        net, pending, approved = (str(uuid.uuid4()) for _ in range(3))
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO networks (id, name, vni, description, cidr4, mtu, encrypted,"
                    " cloaked, storm_pps, created_at, updated_at) VALUES (:id, 'n', 1, '',"
                    " '10.1.0.0/24', 1420, true, false, 0, :now, :now)"
                ),
                {"id": net, "now": now},
            )
            for node, status in ((pending, "pending"), (approved, "approved")):
                conn.execute(
                    text(
                        "INSERT INTO nodes (id, name, public_key, credential_hash, status, os,"
                        " agent_version, tags, interfaces, endpoints, enrolled_at, peer_status,"
                        " seen_ips, lane_keys) VALUES (:id, :id, :id, :id, :status, '', '',"
                        " '[]', '[]', '[]', :now, '[]', '{}', '[]')"
                    ),
                    {"id": node, "status": status, "now": now},
                )
                conn.execute(
                    text(
                        "INSERT INTO ports (id, network_id, node_id, mac, ipv4, extra_ips,"
                        " created_at) VALUES (:id, :net, :node, :mac, :ip, '[]', :now)"
                    ),
                    {
                        "id": str(uuid.uuid4()),
                        "net": net,
                        "node": node,
                        "ip": "10.1.0.2" if node == pending else "10.1.0.3",
                        "mac": "02:00:00:00:00:02" if node == pending else "02:00:00:00:00:03",
                        "now": now,
                    },
                )
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with engine.connect() as conn:
            ports = conn.execute(text("SELECT node_id FROM ports")).scalars().all()
            joins = dict(conn.execute(text("SELECT id, join_networks FROM nodes")).all())
        assert ports == [approved]
        decoded = {k: v if isinstance(v, list) else json.loads(v) for k, v in joins.items()}
        assert decoded == {pending: [net], approved: []}
    finally:
        engine.dispose()
