"""Isolation: egress allowlists, canaries, and the leak guard's action per grant.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("grants", sa.Column("leaks", sa.String(10), nullable=False, server_default="block"))
    op.create_table(
        "egress_rules",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("ports", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_egress_rules_agent_id", "egress_rules", ["agent_id"])
    op.create_table(
        "canaries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("file", sa.String(1000), nullable=True),
        sa.Column("revoke", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_canaries_agent_id", "canaries", ["agent_id"])


def downgrade() -> None:
    for table in ("canaries", "egress_rules"):
        op.drop_table(table)
    op.drop_column("grants", "leaks")
