"""The first schema: meta, upstreams, vault secrets, agents, grants, keys and budgets.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "upstreams",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("base_url", sa.String(2000), nullable=False),
        sa.Column("auth", sa.String(100), nullable=False),
        sa.Column("secret_name", sa.String(63), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "secrets",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("upstream", sa.String(63), nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("rotated_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("upstream", sa.String(63), sa.ForeignKey("upstreams.name"), nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("methods", sa.JSON, nullable=False),
        sa.Column("paths", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_grants_agent_id", "grants", ["agent_id"])
    op.create_table(
        "keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("max_uses", sa.Integer, nullable=True),
        sa.Column("uses_left", sa.Integer, nullable=True),
        sa.Column("cidrs", sa.JSON, nullable=False),
        sa.Column("upstreams", sa.JSON, nullable=False),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
        sa.Column("last_used_ip", sa.String(45), nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_reason", sa.Text, nullable=True),
    )
    op.create_index("ix_keys_agent_id", "keys", ["agent_id"])
    op.create_table(
        "budgets",
        sa.Column("scope", sa.String(10), primary_key=True),
        sa.Column("owner_id", sa.String(40), primary_key=True),
        sa.Column("period", sa.String(10), primary_key=True),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("budgets", "keys", "grants", "agents", "secrets", "upstreams", "meta"):
        op.drop_table(table)
