"""Table definitions used by the SQL store's queries.

The migrations in ``migrations/versions`` create these tables; a test compares the migrated
database with this metadata so the two cannot drift apart. Times are integer UTC epoch seconds,
money integer micro-dollars, lists JSON.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "SCHEMA_HEAD",
    "agents",
    "budgets",
    "canaries",
    "egress_rules",
    "grants",
    "keys",
    "meta",
    "metadata",
    "secrets",
    "upstreams",
]

#: The newest migration; the store refuses to open a database newer than this.
SCHEMA_HEAD = "0003"

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

upstreams = sa.Table(
    "upstreams",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("base_url", sa.String(2000), nullable=False),
    sa.Column("auth", sa.String(100), nullable=False),
    sa.Column("secret_name", sa.String(63), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column("upstream", sa.String(63), nullable=False),
    sa.Column("nonce", sa.LargeBinary, nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("rotated_at", sa.BigInteger, nullable=True),
)

agents = sa.Table(
    "agents",
    metadata,
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

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("upstream", sa.String(63), sa.ForeignKey("upstreams.name"), nullable=False),
    sa.Column("models", sa.JSON, nullable=False),
    sa.Column("methods", sa.JSON, nullable=False),
    sa.Column("paths", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("leaks", sa.String(10), nullable=False, server_default="block"),
)

keys = sa.Table(
    "keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
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

budgets = sa.Table(
    "budgets",
    metadata,
    sa.Column("scope", sa.String(10), primary_key=True),
    sa.Column("owner_id", sa.String(40), primary_key=True),
    sa.Column("period", sa.String(10), primary_key=True),
    sa.Column("amount_micros", sa.BigInteger, nullable=False),
)

limits = sa.Table(
    "limits",
    metadata,
    sa.Column("scope", sa.String(10), primary_key=True),
    sa.Column("owner_id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

#: Settled spend per budget line: (agent|key, id, period, start of the period) -> micro-dollars.
spend = sa.Table(
    "spend",
    metadata,
    sa.Column("scope", sa.String(10), primary_key=True),
    sa.Column("owner_id", sa.String(40), primary_key=True),
    sa.Column("period", sa.String(10), primary_key=True),
    sa.Column("period_start", sa.BigInteger, primary_key=True),
    sa.Column("micros", sa.BigInteger, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("amount_micros", sa.BigInteger, nullable=False),
    sa.Column("period", sa.String(10), nullable=False),
    sa.Column("action", sa.String(10), nullable=False),
)

#: A threshold fires once per period: this row is the proof that it did.
alert_firings = sa.Table(
    "alert_firings",
    metadata,
    sa.Column("alert_id", sa.String(40), primary_key=True),
    sa.Column("period_start", sa.BigInteger, primary_key=True),
    sa.Column("fired_at", sa.BigInteger, nullable=False),
)

#: The change feed: every change to policy state appends (kind, ref); gateways apply what is new.
changes = sa.Table(
    "changes",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("ref", sa.String(100), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
)

#: Hosts an agent may reach through the egress proxy (deny by default).
egress_rules = sa.Table(
    "egress_rules",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("ports", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

#: Decoy credentials planted in agents' environments; values sealed by the vault.
canaries = sa.Table(
    "canaries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("sealed", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("file", sa.String(1000), nullable=True),
    sa.Column("revoke", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)
