"""network services: security groups (rules and a network's default policy), DNS
(a network's domain and its names for other addresses), static IPv6 addresses

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("port_from", sa.Integer(), nullable=True),
        sa.Column("port_to", sa.Integer(), nullable=True),
        sa.Column("source_kind", sa.String(length=8), nullable=False),
        sa.Column("source_value", sa.String(length=64), nullable=True),
        sa.Column("source_node_id", sa.String(length=36), nullable=True),
        sa.Column("target_kind", sa.String(length=8), nullable=False),
        sa.Column("target_value", sa.String(length=64), nullable=True),
        sa.Column("target_node_id", sa.String(length=36), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["target_node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "dns_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=39), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_id", "name", name="uq_dns_records_name"),
    )
    with op.batch_alter_table("networks") as batch:
        batch.add_column(
            sa.Column("policy", sa.String(length=8), nullable=False, server_default="allow")
        )
        batch.add_column(
            sa.Column(
                "dns_domain", sa.String(length=200), nullable=True, server_default="skylan.internal"
            )
        )
    with op.batch_alter_table("ports") as batch:
        batch.add_column(sa.Column("ipv6", sa.String(length=39), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ports") as batch:
        batch.drop_column("ipv6")
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("dns_domain")
        batch.drop_column("policy")
    op.drop_table("dns_records")
    op.drop_table("security_rules")
