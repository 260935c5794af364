"""The SQL store: SQLite in the home by default; PostgreSQL or MariaDB by URL, through SQLAlchemy Core.

SQLite runs in WAL mode with foreign keys on; a write transaction takes the write lock at its
start (``BEGIN IMMEDIATE``) and waits up to ``busy_timeout`` for another process to finish.
Driver errors are translated into the gatepass error tree where they enter.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, Row

from gatepass.alerts.thresholds import Action, Threshold
from gatepass.errors import (
    ConflictError,
    GatepassError,
    HomeError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
)
from gatepass.model import (
    NO_LIMITS,
    Agent,
    AgentStatus,
    AuthStyle,
    Canary,
    EgressRule,
    Grant,
    KeyRecord,
    LiveKey,
    PolicyMode,
    RateLimits,
    Upstream,
    UpstreamType,
)
from gatepass.store import schema as t
from gatepass.store.interface import Change, SealedSecret, SpendRow, Store, Transaction
from gatepass.units import Budget, Period, period_start

__all__ = ["SqlStore", "sqlite_url"]

_BUSY_TIMEOUT_MS = 5000


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# The gateway's spend flush writes tens of thousands of rows a second when many keys are in use,
# from a helper thread. A database driver releases the GIL while each statement runs and takes it
# back after, and the event loop holds it most of the time: one statement per row (executemany)
# waited for the GIL once per row, and a flush of 200,000 rows took 37 s while the batches waiting
# behind it grew. So rows go many to a statement: sizes from _ROW_SIZES, largest first, each
# statement built and compiled once per dialect and size, then only executed (SQLAlchemy compiles
# an INSERT of many rows anew on every execution: 30 times the cost of executing it).
_ROW_SIZES = (512, 128, 32, 8, 1)
# Keys' last use goes by smaller statements: its UPDATE finds each row's values in a CASE with a
# branch per row, so a statement costs rows x branches (4,000 keys: 55 ms of CPU at 512 a
# statement on SQLite, 15 ms at 32).
_TOUCH_SIZES = (32, 8, 1)
_SPEND_COLUMNS = ("scope", "owner_id", "period", "period_start", "micros")


@cache
def _spend_upsert(dialect: str, rows: int) -> sa.Insert | None:
    """INSERT of ``rows`` spend lines that adds to existing ones, in the dialect's own syntax (None:
    not known here). Parameters: ``<column>_<n>`` for row n."""
    spend = t.spend
    values = [{c: sa.bindparam(f"{c}_{n}", type_=spend.c[c].type) for c in _SPEND_COLUMNS} for n in range(rows)]
    if dialect in ("sqlite", "postgresql"):
        insert = (sqlite_insert(spend) if dialect == "sqlite" else postgresql_insert(spend)).values(values)
        return insert.on_conflict_do_update(
            index_elements=list(spend.primary_key.columns), set_={"micros": spend.c.micros + insert.excluded.micros}
        )
    if dialect in ("mysql", "mariadb"):
        mysql = mysql_insert(spend).values(values)
        return mysql.on_duplicate_key_update(micros=spend.c.micros + mysql.inserted.micros)
    return None


@cache
def _touch_keys(rows: int) -> sa.Update:
    """UPDATE of the last use of ``rows`` keys (``k_id_<n>``, ``k_at_<n>``, ``k_ip_<n>``): plain SQL
    that every dialect runs, a CASE per column."""
    k = t.keys.c
    ids = [sa.bindparam(f"k_id_{n}", type_=k.id.type) for n in range(rows)]
    at = [sa.bindparam(f"k_at_{n}", type_=k.last_used_at.type) for n in range(rows)]
    ip = [sa.bindparam(f"k_ip_{n}", type_=k.last_used_ip.type) for n in range(rows)]
    if rows == 1:
        return t.keys.update().where(k.id == ids[0]).values(last_used_at=at[0], last_used_ip=ip[0])
    return (
        t.keys.update()
        .where(k.id.in_(ids))
        .values(
            last_used_at=sa.case(*((k.id == ids[n], at[n]) for n in range(rows))),
            last_used_ip=sa.case(*((k.id == ids[n], ip[n]) for n in range(rows))),
        )
    )


def _in_statements(
    rows: Iterable[tuple[Any, ...]], sizes: Sequence[int] = _ROW_SIZES
) -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
    """``rows`` in groups of ``sizes`` (largest first, ending with 1): (size, rows)."""
    found = iter(rows)
    waiting: list[tuple[Any, ...]] = []
    while True:
        waiting += islice(found, sizes[0] - len(waiting))
        if not waiting:
            return
        size = next(n for n in sizes if n <= len(waiting))
        yield size, waiting[:size]
        del waiting[:size]


def _params(names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    return {f"{name}_{n}": value for n, row in enumerate(rows) for name, value in zip(names, row, strict=True)}


@cache
def _driver_sql(dialect: sa.Dialect, statement: sa.Insert | sa.Update) -> tuple[str, tuple[str, ...] | None]:
    """``statement`` as the dialect's driver takes it, and the order of its parameters when the
    driver's parameters are positional (None: by name)."""
    compiled = statement.compile(dialect=dialect)
    return compiled.string, tuple(compiled.positiontup or ()) if compiled.positional else None


def _execute_compiled(c: Connection, statement: sa.Insert | sa.Update, params: dict[str, Any]) -> None:
    sql, order = _driver_sql(c.dialect, statement)
    c.exec_driver_sql(sql, params if order is None else tuple(params[name] for name in order))


def _ts(value: datetime) -> int:
    return int(value.timestamp())


def _dt(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _dt_req(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SqlStore(Store):
    """A store on any SQLAlchemy URL; ``create=True`` builds the schema in an empty database."""

    def __init__(self, url: str, *, create: bool = False) -> None:
        self._url = sa.engine.make_url(url)
        self._is_sqlite = self._url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self._is_sqlite:
            kwargs["connect_args"] = {"timeout": _BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self._engine: Engine = sa.create_engine(self._url, **kwargs)
        if self._is_sqlite:
            _configure_sqlite(self._engine)
        self._migrate(create=create)

    @property
    def display_url(self) -> str:
        return self._url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Transaction]:
        try:
            with self._engine.connect() as conn:
                conn.info["gatepass_write"] = write
                with conn.begin():
                    yield _SqlTransaction(conn)
        except GatepassError:
            raise
        except exc.SQLAlchemyError as error:
            raise self._translate(error) from error

    def _translate(self, error: exc.SQLAlchemyError) -> GatepassError:
        text = str(getattr(error, "orig", error)).lower()
        where = self.display_url
        if isinstance(error, exc.IntegrityError):
            return ConflictError(
                f"the change conflicts with what the store holds ({_first_line(text)}); list what exists and try again"
            )
        if "database is locked" in text or "database table is locked" in text or "lock wait timeout" in text:
            return StoreLockedError(
                f"the store {where} is locked by another process: "
                "try again when the other gatepass command or gateway is done"
            )
        if "not a database" in text or "malformed" in text or "file is encrypted" in text:
            return StoreCorruptError(
                f"the store {where} is corrupted or is not a gatepass store: restore it from a backup"
            )
        if isinstance(error, exc.OperationalError | exc.InterfaceError):
            return StoreError(
                f"cannot use the store {where} ({_first_line(text)}): "
                "check that the database is running and store.url in config.toml"
            )
        return StoreError(f"the store {where} failed ({type(error).__name__}): see the database's log")

    def _migrate(self, *, create: bool) -> None:
        try:
            with self._engine.connect() as conn, conn.begin():
                if _schema_version(conn) == t.SCHEMA_HEAD:
                    return  # the usual case: a read, no write lock
            with self._engine.connect() as conn:
                conn.info["gatepass_write"] = True
                with conn.begin():
                    current = _schema_version(conn)
                    if current == t.SCHEMA_HEAD:
                        return
                    if current is None and not create:
                        raise HomeError(f"the store {self.display_url} has no gatepass schema: run gatepass init first")
                    if current is not None and current > t.SCHEMA_HEAD:
                        raise StoreError(
                            f"the store {self.display_url} has schema {current}, newer than this "
                            f"gatepass knows ({t.SCHEMA_HEAD}): upgrade gatepass"
                        )
                    _run_migrations(conn)
        except GatepassError:
            raise
        except exc.SQLAlchemyError as error:
            raise self._translate(error) from error


def _first_line(text: str) -> str:
    return text.splitlines()[0][:200] if text else "no detail"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("gatepass_write") else "BEGIN")


def _schema_version(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _run_migrations(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


class _SqlTransaction(Transaction):
    def __init__(self, conn: Connection) -> None:
        self._c = conn

    # -- meta ---------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        return self._c.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        done = self._c.execute(t.meta.update().where(t.meta.c.key == key).values(value=value))
        if done.rowcount == 0:
            self._c.execute(t.meta.insert().values(key=key, value=value))
        if key.startswith("keys."):
            self._changed("settings", key)

    def _changed(self, kind: str, ref: str) -> None:
        self._c.execute(t.changes.insert().values(kind=kind, ref=ref, at=int(datetime.now(UTC).timestamp())))

    # -- upstreams ----------------------------------------------------------------------------------
    def put_upstream(self, upstream: Upstream) -> None:
        values = {
            "type": upstream.type.value,
            "base_url": upstream.base_url,
            "auth": str(upstream.auth),
            "secret_name": upstream.secret_name,
            "created_at": _ts(upstream.created_at),
        }
        done = self._c.execute(t.upstreams.update().where(t.upstreams.c.name == upstream.name).values(**values))
        if done.rowcount == 0:
            self._c.execute(t.upstreams.insert().values(name=upstream.name, **values))
        self._changed("upstream", upstream.name)

    @staticmethod
    def _upstream(row: Row[Any]) -> Upstream:
        return Upstream(
            name=row.name,
            type=UpstreamType(row.type),
            base_url=row.base_url,
            auth=AuthStyle.parse(row.auth),
            secret_name=row.secret_name,
            created_at=_dt_req(row.created_at),
        )

    def get_upstream(self, name: str) -> Upstream | None:
        row = self._c.execute(sa.select(t.upstreams).where(t.upstreams.c.name == name)).first()
        return None if row is None else self._upstream(row)

    def list_upstreams(self) -> list[Upstream]:
        rows = self._c.execute(sa.select(t.upstreams).order_by(t.upstreams.c.name))
        return [self._upstream(r) for r in rows]

    def delete_upstream(self, name: str) -> bool:
        self._changed("upstream", name)
        return self._c.execute(t.upstreams.delete().where(t.upstreams.c.name == name)).rowcount > 0

    # -- vault --------------------------------------------------------------------------------------
    def put_secret(self, secret: SealedSecret) -> None:
        values = {
            "name": secret.name,
            "upstream": secret.upstream,
            "nonce": secret.nonce,
            "ciphertext": secret.ciphertext,
            "fingerprint": secret.fingerprint,
            "created_at": _ts(secret.created_at),
            "rotated_at": None if secret.rotated_at is None else _ts(secret.rotated_at),
        }
        done = self._c.execute(t.secrets.update().where(t.secrets.c.id == secret.id).values(**values))
        if done.rowcount == 0:
            self._c.execute(t.secrets.insert().values(id=secret.id, **values))
        self._changed("secret", secret.name)

    @staticmethod
    def _secret(row: Row[Any]) -> SealedSecret:
        return SealedSecret(
            id=row.id,
            name=row.name,
            upstream=row.upstream,
            nonce=bytes(row.nonce),
            ciphertext=bytes(row.ciphertext),
            fingerprint=row.fingerprint,
            created_at=_dt_req(row.created_at),
            rotated_at=_dt(row.rotated_at),
        )

    def get_secret(self, name: str) -> SealedSecret | None:
        row = self._c.execute(sa.select(t.secrets).where(t.secrets.c.name == name)).first()
        return None if row is None else self._secret(row)

    def list_secrets(self) -> list[SealedSecret]:
        return [self._secret(r) for r in self._c.execute(sa.select(t.secrets).order_by(t.secrets.c.name))]

    def delete_secret(self, name: str) -> bool:
        self._changed("secret", name)
        return self._c.execute(t.secrets.delete().where(t.secrets.c.name == name)).rowcount > 0

    # -- agents -------------------------------------------------------------------------------------
    def put_agent(self, agent: Agent) -> None:
        values = {
            "name": agent.name,
            "owner": agent.owner,
            "email": agent.email,
            "description": agent.description,
            "status": agent.status.value,
            "status_reason": agent.status_reason,
            "mode": agent.mode.value,
            "created_at": _ts(agent.created_at),
            "updated_at": _ts(agent.updated_at),
        }
        done = self._c.execute(t.agents.update().where(t.agents.c.id == agent.id).values(**values))
        if done.rowcount == 0:
            self._c.execute(t.agents.insert().values(id=agent.id, **values))
        self._set_budgets("agent", agent.id, agent.budgets)
        self._set_limits("agent", agent.id, agent.limits)
        self._changed("agent", agent.id)

    def _set_budgets(self, scope: str, owner_id: str, budgets: Sequence[Budget]) -> None:
        self._c.execute(t.budgets.delete().where(t.budgets.c.scope == scope, t.budgets.c.owner_id == owner_id))
        if budgets:
            self._c.execute(
                t.budgets.insert(),
                [
                    {"scope": scope, "owner_id": owner_id, "period": b.period.value, "amount_micros": b.amount_micros}
                    for b in budgets
                ],
            )

    def _set_limits(self, scope: str, owner_id: str, limits: RateLimits) -> None:
        self._c.execute(t.limits.delete().where(t.limits.c.scope == scope, t.limits.c.owner_id == owner_id))
        rows = [{"scope": scope, "owner_id": owner_id, "kind": k, "value": v} for k, v in limits.items()]
        if rows:
            self._c.execute(t.limits.insert(), rows)

    def _owned(self, table: sa.Table, scope: str, owner_ids: Sequence[str] | None) -> Iterator[Row[Any]]:
        """The rows of ``table`` (budgets or limits) that belong to ``owner_ids`` (all when None)."""
        query = sa.select(table).where(table.c.scope == scope)
        if owner_ids is not None:
            if not owner_ids:
                return iter(())
            query = query.where(table.c.owner_id.in_(owner_ids))
        return iter(self._c.execute(query))

    # Owners with equal budgets or limits share one object: most keys of a deployment have the same
    # few, and the gateway holds every key. Nothing is made per owner while the maps are built but
    # what the maps keep (an owner's budgets or limits change by swapping in the shared value), and
    # the limits map keys its owners by the budgets map's strings: objects made and dropped while
    # 100,000s of keys are loaded are left as holes between the ones kept, which the process holds
    # on to. With 100,000 keys that all have a budget and a limit, the gateway started at 191 MB
    # when rows were kept while grouping, 152 MB with per-owner lists and dicts, and 137 MB now.
    def _budget_map(self, scope: str, owner_ids: Sequence[str] | None) -> dict[str, tuple[Budget, ...]]:
        one: dict[tuple[int, str], Budget] = {}
        shared: dict[tuple[Budget, ...], tuple[Budget, ...]] = {}
        by_owner: dict[str, tuple[Budget, ...]] = {}
        for r in self._owned(t.budgets, scope, owner_ids):
            amount, period = int(r.amount_micros), r.period
            budget = one.get((amount, period))
            if budget is None:
                budget = one[amount, period] = Budget(amount, Period(period))
            have = by_owner.get(r.owner_id)
            budgets = (budget,) if have is None else tuple(sorted((*have, budget), key=_period_order))
            by_owner[r.owner_id] = shared.setdefault(budgets, budgets)
        return by_owner

    def _limit_map(
        self, scope: str, owner_ids: Sequence[str] | None, names: dict[str, str] | None = None
    ) -> dict[str, RateLimits]:
        """``names``: owner id -> the string to keep for it (so that two maps share one)."""
        shared: dict[tuple[int | None, ...], RateLimits] = {}
        by_owner: dict[str, RateLimits] = {}
        for r in self._owned(t.limits, scope, owner_ids):
            have = by_owner.get(r.owner_id, NO_LIMITS)
            values = {"rpm": have.rpm, "tpm": have.tpm, "concurrency": have.concurrency, r.kind: int(r.value)}
            wanted = (values["rpm"], values["tpm"], values["concurrency"])
            limits = shared.get(wanted)
            if limits is None:
                limits = shared[wanted] = RateLimits(*wanted)
            by_owner[r.owner_id if names is None else names.get(r.owner_id, r.owner_id)] = limits
        return by_owner

    @staticmethod
    def _agent(row: Row[Any], budgets: tuple[Budget, ...], limits: RateLimits) -> Agent:
        return Agent(
            id=row.id,
            name=row.name,
            owner=row.owner,
            email=row.email,
            description=row.description,
            status=AgentStatus(row.status),
            mode=PolicyMode(row.mode),
            created_at=_dt_req(row.created_at),
            updated_at=_dt_req(row.updated_at),
            status_reason=row.status_reason,
            budgets=budgets,
            limits=limits,
        )

    def _one_agent(self, where: sa.ColumnElement[bool]) -> Agent | None:
        row = self._c.execute(sa.select(t.agents).where(where)).first()
        if row is None:
            return None
        budgets = self._budget_map("agent", [row.id]).get(row.id, ())
        return self._agent(row, budgets, self._limit_map("agent", [row.id]).get(row.id, RateLimits()))

    def get_agent(self, name: str) -> Agent | None:
        return self._one_agent(t.agents.c.name == name)

    def get_agent_by_id(self, agent_id: str) -> Agent | None:
        return self._one_agent(t.agents.c.id == agent_id)

    def list_agents(self) -> list[Agent]:
        budgets = self._budget_map("agent", None)
        limits = self._limit_map("agent", None)
        rows = self._c.execute(sa.select(t.agents).order_by(t.agents.c.name))
        return [self._agent(r, budgets.get(r.id, ()), limits.get(r.id, RateLimits())) for r in rows]

    def delete_agent(self, agent_id: str) -> bool:
        key_ids = [r.id for r in self._c.execute(sa.select(t.keys.c.id).where(t.keys.c.agent_id == agent_id))]
        for table in (t.budgets, t.limits):
            if key_ids:
                self._c.execute(table.delete().where(table.c.scope == "key", table.c.owner_id.in_(key_ids)))
            self._c.execute(table.delete().where(table.c.scope == "agent", table.c.owner_id == agent_id))
        alert_ids = sa.select(t.alerts.c.id).where(t.alerts.c.agent_id == agent_id)
        self._c.execute(t.alert_firings.delete().where(t.alert_firings.c.alert_id.in_(alert_ids)))
        self._c.execute(t.alerts.delete().where(t.alerts.c.agent_id == agent_id))
        self._c.execute(t.keys.delete().where(t.keys.c.agent_id == agent_id))
        self._c.execute(t.grants.delete().where(t.grants.c.agent_id == agent_id))
        self._c.execute(t.egress_rules.delete().where(t.egress_rules.c.agent_id == agent_id))
        self._c.execute(t.canaries.delete().where(t.canaries.c.agent_id == agent_id))
        for key_id in key_ids:
            self._changed("key", key_id)
        self._changed("agent", agent_id)
        return self._c.execute(t.agents.delete().where(t.agents.c.id == agent_id)).rowcount > 0

    # -- grants -------------------------------------------------------------------------------------
    def add_grant(self, grant: Grant) -> None:
        created = grant.created_at or datetime.now(UTC)
        self._c.execute(
            t.grants.insert().values(
                id=grant.id,
                agent_id=grant.agent_id,
                upstream=grant.upstream,
                models=list(grant.models),
                methods=list(grant.methods),
                paths=list(grant.paths),
                created_at=_ts(created),
                leaks=grant.leaks,
            )
        )
        self._changed("grants", grant.agent_id)

    def list_grants(self, agent_id: str | None = None) -> list[Grant]:
        query = sa.select(t.grants).order_by(t.grants.c.created_at, t.grants.c.id)
        if agent_id is not None:
            query = query.where(t.grants.c.agent_id == agent_id)
        return [
            Grant(
                id=r.id,
                agent_id=r.agent_id,
                upstream=r.upstream,
                models=tuple(_json_list(r.models)),
                methods=tuple(_json_list(r.methods)),
                paths=tuple(_json_list(r.paths)),
                created_at=_dt(r.created_at),
                leaks=r.leaks,
            )
            for r in self._c.execute(query)
        ]

    def delete_grant(self, grant_id: str) -> bool:
        agent_id = self._c.execute(sa.select(t.grants.c.agent_id).where(t.grants.c.id == grant_id)).scalar()
        if agent_id is None:
            return False
        self._c.execute(t.grants.delete().where(t.grants.c.id == grant_id))
        self._changed("grants", agent_id)
        return True

    # -- egress allowlist -----------------------------------------------------------------------------
    def add_egress_rule(self, rule: EgressRule) -> None:
        created = rule.created_at or datetime.now(UTC)
        self._c.execute(
            t.egress_rules.insert().values(
                id=rule.id, agent_id=rule.agent_id, host=rule.host, ports=list(rule.ports), created_at=_ts(created)
            )
        )
        self._changed("egress", rule.agent_id)

    def list_egress_rules(self, agent_id: str | None = None) -> list[EgressRule]:
        query = sa.select(t.egress_rules).order_by(t.egress_rules.c.created_at, t.egress_rules.c.id)
        if agent_id is not None:
            query = query.where(t.egress_rules.c.agent_id == agent_id)
        return [
            EgressRule(
                id=r.id,
                agent_id=r.agent_id,
                host=r.host,
                ports=tuple(int(p) for p in _json_list(r.ports)),
                created_at=_dt(r.created_at),
            )
            for r in self._c.execute(query)
        ]

    def delete_egress_rule(self, rule_id: str) -> bool:
        table = t.egress_rules
        agent_id = self._c.execute(sa.select(table.c.agent_id).where(table.c.id == rule_id)).scalar()
        if agent_id is None:
            return False
        self._c.execute(table.delete().where(table.c.id == rule_id))
        self._changed("egress", agent_id)
        return True

    # -- canaries -------------------------------------------------------------------------------------
    def add_canary(self, canary: Canary) -> None:
        created = canary.created_at or datetime.now(UTC)
        self._c.execute(
            t.canaries.insert().values(
                id=canary.id,
                agent_id=canary.agent_id,
                kind=canary.kind,
                sealed=canary.sealed,
                fingerprint=canary.fingerprint,
                file=canary.file,
                revoke=canary.revoke,
                created_at=_ts(created),
            )
        )
        self._changed("canaries", canary.agent_id)

    def list_canaries(self, agent_id: str | None = None) -> list[Canary]:
        query = sa.select(t.canaries).order_by(t.canaries.c.created_at, t.canaries.c.id)
        if agent_id is not None:
            query = query.where(t.canaries.c.agent_id == agent_id)
        return [
            Canary(
                id=r.id,
                agent_id=r.agent_id,
                kind=r.kind,
                sealed=r.sealed,
                fingerprint=r.fingerprint,
                file=r.file,
                revoke=bool(r.revoke),
                created_at=_dt(r.created_at),
            )
            for r in self._c.execute(query)
        ]

    def delete_canary(self, canary_id: str) -> bool:
        table = t.canaries
        agent_id = self._c.execute(sa.select(table.c.agent_id).where(table.c.id == canary_id)).scalar()
        if agent_id is None:
            return False
        self._c.execute(table.delete().where(table.c.id == canary_id))
        self._changed("canaries", agent_id)
        return True

    # -- keys ---------------------------------------------------------------------------------------
    def add_key(self, key: KeyRecord, digest: str) -> None:
        self._c.execute(
            t.keys.insert().values(
                id=key.id,
                agent_id=key.agent_id,
                digest=digest,
                created_at=_ts(key.created_at),
                expires_at=_ts(key.expires_at),
                max_uses=key.max_uses,
                uses_left=key.uses_left,
                cidrs=list(key.cidrs),
                upstreams=list(key.upstreams),
            )
        )
        self._set_budgets("key", key.id, key.budgets)
        self._set_limits("key", key.id, key.limits)
        self._changed("key", key.id)

    def _keys(self, where: sa.ColumnElement[bool] | None) -> list[KeyRecord]:
        query = sa.select(t.keys).order_by(t.keys.c.created_at, t.keys.c.id)
        if where is not None:
            query = query.where(where)
        rows = list(self._c.execute(query))
        owners = [r.id for r in rows] if where is not None else None
        budgets = self._budget_map("key", owners)
        limits = self._limit_map("key", owners)
        return [_key_record(r, budgets, limits) for r in rows]

    def iter_keys_with_digests(self, batch: int = 5000) -> Iterator[tuple[KeyRecord, str]]:
        """Every key with its digest, streamed in batches (the gateway loads 100,000s of them)."""
        budgets = self._budget_map("key", None)
        limits = self._limit_map("key", None)
        result = self._c.execution_options(yield_per=batch).execute(sa.select(t.keys))
        agent_ids: dict[str, str] = {}  # one string per agent, shared by all its keys
        for partition in result.partitions():
            for r in partition:
                yield _key_record(r, budgets, limits, agent_ids), r.digest

    def iter_live_keys(
        self, ended_after: datetime | None = None, *, batch: int = 5000
    ) -> Iterator[tuple[LiveKey, bytes]]:
        budgets = self._budget_map("key", None)
        names = {key_id: key_id for key_id in budgets}  # the one string each key keeps for its id
        limits = self._limit_map("key", None, names)
        names.update((key_id, key_id) for key_id in limits if key_id not in names)
        k = t.keys.c
        query = sa.select(k.id, k.agent_id, k.expires_at, k.uses_left, k.cidrs, k.upstreams, k.revoked_at, k.digest)
        if ended_after is not None:
            after = _ts(ended_after)
            query = query.where(k.expires_at > after, sa.or_(k.revoked_at.is_(None), k.revoked_at > after))
        agent_ids: dict[str, str] = {}  # one string per agent, shared by all its keys
        for partition in self._c.execution_options(yield_per=batch).execute(query).partitions():
            for key_id, agent_id, expires_at, uses_left, cidrs, upstreams, revoked_at, digest in partition:
                key = LiveKey(
                    names.get(key_id, key_id),
                    agent_ids.setdefault(agent_id, agent_id),
                    _dt_req(expires_at),
                    uses_left,
                    tuple(_json_list(cidrs)) if cidrs else (),
                    tuple(_json_list(upstreams)) if upstreams else (),
                    budgets.get(key_id, ()),
                    limits.get(key_id, NO_LIMITS),
                    _dt(revoked_at),
                )
                yield key, bytes.fromhex(digest)

    def get_key(self, key_id: str) -> KeyRecord | None:
        found = self._keys(t.keys.c.id == key_id)
        return found[0] if found else None

    def find_key(self, digest: str) -> KeyRecord | None:
        found = self._keys(t.keys.c.digest == digest)
        return found[0] if found else None

    def list_keys(self, agent_id: str | None = None) -> list[KeyRecord]:
        return self._keys(None if agent_id is None else t.keys.c.agent_id == agent_id)

    def key_digests(self, key_ids: Sequence[str] | None = None) -> dict[str, str]:
        query = sa.select(t.keys.c.id, t.keys.c.digest)
        if key_ids is not None:
            query = query.where(t.keys.c.id.in_(key_ids))
        return {r.id: r.digest for r in self._c.execute(query)}

    def revoke_keys(self, key_ids: Sequence[str], at: datetime, reason: str) -> list[str]:
        if not key_ids:
            return []
        pending = [
            r.id
            for r in self._c.execute(
                sa.select(t.keys.c.id)
                .where(t.keys.c.id.in_(key_ids), t.keys.c.revoked_at.is_(None))
                .order_by(t.keys.c.created_at, t.keys.c.id)
            )
        ]
        if pending:
            self._c.execute(
                t.keys.update().where(t.keys.c.id.in_(pending)).values(revoked_at=_ts(at), revoked_reason=reason)
            )
        for key_id in pending:
            self._changed("key", key_id)
        return pending

    def touch_key(self, key_id: str, at: datetime, source_ip: str | None) -> None:
        self.touch_keys([(key_id, at, source_ip)])

    def touch_keys(self, uses: Sequence[tuple[str, datetime, str | None]]) -> None:
        stamps = ((key_id, _ts(at), ip) for key_id, at, ip in uses)
        for size, rows in _in_statements(stamps, _TOUCH_SIZES):
            _execute_compiled(self._c, _touch_keys(size), _params(("k_id", "k_at", "k_ip"), rows))

    def consume_key_use(self, key_id: str, at: datetime, source_ip: str | None) -> bool:
        stamp = {"last_used_at": _ts(at), "last_used_ip": source_ip}
        limited = self._c.execute(
            t.keys.update()
            .where(t.keys.c.id == key_id, t.keys.c.uses_left.is_not(None), t.keys.c.uses_left > 0)
            .values(uses_left=t.keys.c.uses_left - 1, **stamp)
        )
        if limited.rowcount > 0:
            return True
        unlimited = self._c.execute(
            t.keys.update().where(t.keys.c.id == key_id, t.keys.c.uses_left.is_(None)).values(**stamp)
        )
        return unlimited.rowcount > 0

    def set_key_budgets(self, key_id: str, budgets: Sequence[Budget]) -> None:
        self._set_budgets("key", key_id, budgets)
        self._changed("key", key_id)

    # -- spend --------------------------------------------------------------------------------------
    def add_spend(self, rows: Iterable[SpendRow]) -> None:
        dialect = self._c.dialect.name
        if _spend_upsert(dialect, 1) is not None:
            # Many rows to a statement (see _ROW_SIZES). The rows may come from a generator: only
            # one statement's worth of them exists at a time.
            lines = ((r.scope, r.owner_id, r.period.value, _ts(r.period_start), r.micros) for r in rows)
            for size, group in _in_statements(lines):
                upsert = _spend_upsert(dialect, size)
                assert upsert is not None
                _execute_compiled(self._c, upsert, _params(_SPEND_COLUMNS, group))
            return
        s = t.spend.c
        for row in rows:
            where = (
                s.scope == row.scope,
                s.owner_id == row.owner_id,
                s.period == row.period.value,
                s.period_start == _ts(row.period_start),
            )
            done = self._c.execute(t.spend.update().where(*where).values(micros=s.micros + row.micros))
            if done.rowcount == 0:
                self._c.execute(
                    t.spend.insert().values(
                        scope=row.scope,
                        owner_id=row.owner_id,
                        period=row.period.value,
                        period_start=_ts(row.period_start),
                        micros=row.micros,
                    )
                )

    def get_spend(self, since: datetime | None = None) -> list[SpendRow]:
        query = sa.select(t.spend)
        if since is not None:
            query = query.where(sa.or_(t.spend.c.period_start >= _ts(since), t.spend.c.period == Period.TOTAL.value))
        return [
            SpendRow(r.scope, r.owner_id, Period(r.period), _dt_req(r.period_start), int(r.micros))
            for r in self._c.execute(query)
        ]

    def current_spend(self, now: datetime, *, batch: int = 5000) -> Iterator[SpendRow]:
        # Added up in the database: a month of day rows for 100,000 keys is millions of rows.
        s = t.spend.c
        streamed = self._c.execution_options(yield_per=batch)
        for period in (Period.DAY, Period.WEEK, Period.MONTH):
            start = period_start(period, now)
            query = (
                sa.select(s.scope, s.owner_id, sa.func.sum(s.micros))
                .where(s.period == Period.DAY.value, s.period_start >= _ts(start))
                .group_by(s.scope, s.owner_id)
            )
            for partition in streamed.execute(query).partitions():
                for scope, owner_id, micros in partition:
                    yield SpendRow(scope, owner_id, period, start, int(micros))
        totals = sa.select(s.scope, s.owner_id, s.period_start, s.micros).where(s.period == Period.TOTAL.value)
        for chunk in streamed.execute(totals).partitions():
            for scope, owner_id, started, micros in chunk:
                yield SpendRow(scope, owner_id, Period.TOTAL, _dt_req(started), int(micros))

    # -- spend thresholds -----------------------------------------------------------------------------
    def set_alerts(self, agent_id: str, thresholds: Sequence[Threshold]) -> None:
        self._c.execute(t.alerts.delete().where(t.alerts.c.agent_id == agent_id))
        if thresholds:
            self._c.execute(
                t.alerts.insert(),
                [
                    {
                        "id": th.id,
                        "agent_id": agent_id,
                        "amount_micros": th.amount_micros,
                        "period": th.period.value,
                        "action": th.action.value,
                    }
                    for th in thresholds
                ],
            )
        self._changed("alerts", agent_id)

    def list_alerts(self, agent_id: str | None = None) -> dict[str, tuple[Threshold, ...]]:
        query = sa.select(t.alerts).order_by(t.alerts.c.amount_micros, t.alerts.c.id)
        if agent_id is not None:
            query = query.where(t.alerts.c.agent_id == agent_id)
        found: dict[str, list[Threshold]] = defaultdict(list)
        for r in self._c.execute(query):
            found[r.agent_id].append(Threshold(r.id, int(r.amount_micros), Period(r.period), Action(r.action)))
        return {owner: tuple(items) for owner, items in found.items()}

    def record_firing(self, threshold_id: str, period_start: datetime, at: datetime) -> bool:
        exists = self._c.execute(
            sa.select(t.alert_firings.c.alert_id).where(
                t.alert_firings.c.alert_id == threshold_id, t.alert_firings.c.period_start == _ts(period_start)
            )
        ).first()
        if exists is not None:
            return False
        self._c.execute(
            t.alert_firings.insert().values(alert_id=threshold_id, period_start=_ts(period_start), fired_at=_ts(at))
        )
        return True

    def fired_since(self, since: datetime) -> set[tuple[str, datetime]]:
        query = sa.select(t.alert_firings).where(
            sa.or_(t.alert_firings.c.period_start >= _ts(since), t.alert_firings.c.period_start == 0)
        )
        return {(r.alert_id, _dt_req(r.period_start)) for r in self._c.execute(query)}

    # -- change feed ----------------------------------------------------------------------------------
    def changes_since(self, seq: int, limit: int = 10_000) -> list[Change]:
        query = sa.select(t.changes).where(t.changes.c.seq > seq).order_by(t.changes.c.seq).limit(limit)
        return [Change(int(r.seq), r.kind, r.ref) for r in self._c.execute(query)]

    def last_change_seq(self) -> int:
        return int(self._c.execute(sa.select(sa.func.max(t.changes.c.seq))).scalar() or 0)


def _key_record(
    r: Row[Any],
    budgets: dict[str, tuple[Budget, ...]],
    limits: dict[str, RateLimits],
    agent_ids: dict[str, str] | None = None,
) -> KeyRecord:
    return KeyRecord(
        id=r.id,
        agent_id=r.agent_id if agent_ids is None else agent_ids.setdefault(r.agent_id, r.agent_id),
        created_at=_dt_req(r.created_at),
        expires_at=_dt_req(r.expires_at),
        max_uses=r.max_uses,
        uses_left=r.uses_left,
        cidrs=tuple(_json_list(r.cidrs)),
        upstreams=tuple(_json_list(r.upstreams)),
        budgets=budgets.get(r.id, ()),
        limits=limits.get(r.id, NO_LIMITS),
        last_used_at=_dt(r.last_used_at),
        last_used_ip=r.last_used_ip,
        revoked_at=_dt(r.revoked_at),
        revoked_reason=r.revoked_reason,
    )


def _json_list(value: Any) -> list[str]:
    if isinstance(value, str):  # drivers without a native JSON type hand back text
        value = json.loads(value)
    return [str(v) for v in value]


def _period_order(budget: Budget) -> int:
    return _PERIOD_ORDER[budget.period]


_PERIOD_ORDER: Final = {period: i for i, period in enumerate(Period)}
