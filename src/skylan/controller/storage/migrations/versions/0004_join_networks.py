"""pending nodes hold no addresses: the networks they join on approval

Revision ID: 0004
Revises: 0003

A node enrolled with a token that needs approval used to get its ports (and
addresses from the pools) at once. Now it only records which networks to join;
pending nodes that already hold ports give them back here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("join_networks", sa.JSON(), nullable=False, server_default="[]"))
    nodes = sa.table(
        "nodes",
        sa.column("id", sa.String),
        sa.column("status"),
        sa.column("join_networks", sa.JSON),
    )
    ports = sa.table("ports", sa.column("node_id", sa.String), sa.column("network_id", sa.String))
    bind = op.get_bind()
    pending = [r.id for r in bind.execute(sa.select(nodes.c.id).where(nodes.c.status == "pending"))]
    for node_id in pending:
        held = sorted(
            r.network_id
            for r in bind.execute(sa.select(ports.c.network_id).where(ports.c.node_id == node_id))
        )
        if held:
            bind.execute(nodes.update().where(nodes.c.id == node_id).values(join_networks=held))
            bind.execute(ports.delete().where(ports.c.node_id == node_id))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("join_networks")
