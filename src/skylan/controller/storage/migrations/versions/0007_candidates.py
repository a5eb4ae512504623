"""paths: a node's candidates beyond its interfaces (reflexive, relay), and relays

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("candidates", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("relay_ids", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "relays",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=True),
        sa.Column("tls_port", sa.Integer(), nullable=True),
        sa.Column("credential_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forwarded_bytes", sa.BigInteger(), nullable=False),
        sa.Column("forwarded_packets", sa.BigInteger(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("credential_hash"),
    )


def downgrade() -> None:
    op.drop_table("relays")
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("relay_ids")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("candidates")
