"""The gateway's tables: rate limits, spend, spend thresholds and their firings, and the change feed.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limits",
        sa.Column("scope", sa.String(10), primary_key=True),
        sa.Column("owner_id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "spend",
        sa.Column("scope", sa.String(10), primary_key=True),
        sa.Column("owner_id", sa.String(40), primary_key=True),
        sa.Column("period", sa.String(10), primary_key=True),
        sa.Column("period_start", sa.BigInteger, primary_key=True),
        sa.Column("micros", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
    )
    op.create_index("ix_alerts_agent_id", "alerts", ["agent_id"])
    op.create_table(
        "alert_firings",
        sa.Column("alert_id", sa.String(40), primary_key=True),
        sa.Column("period_start", sa.BigInteger, primary_key=True),
        sa.Column("fired_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ref", sa.String(100), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("changes", "alert_firings", "alerts", "spend", "limits"):
        op.drop_table(table)
