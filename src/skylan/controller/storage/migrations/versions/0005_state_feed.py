"""change rows name API tokens too; each node's stored statistics sequence

Revision ID: 0005
Revises: 0004

Every write now records a change, which each controller replica reads to
bring its in-memory state up to date; revoking an API token must reach them
all. ``stats_seq`` is the highest statistics report of a node that is stored,
so that a report sent twice (to two replicas, say) counts once;
``enroll_request_hash`` lets an agent that lost the answer to its enrolment
repeat it (the agent's own random request id, hashed).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("api_token_ids", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(
            sa.Column("stats_seq", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("enroll_request_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("enroll_request_hash")
        batch.drop_column("stats_seq")
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("api_token_ids")
