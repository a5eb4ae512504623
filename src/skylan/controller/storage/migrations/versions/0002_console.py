"""web console: browser sessions; tunnel status and ARP-seen addresses per node

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("api_token_id", sa.String(length=36), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["api_token_id"], ["api_tokens.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_console_sessions_api_token_id", "console_sessions", ["api_token_id"])
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("peer_status", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("seen_ips", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("seen_ips")
        batch.drop_column("peer_status")
    op.drop_index("ix_console_sessions_api_token_id", table_name="console_sessions")
    op.drop_table("console_sessions")
