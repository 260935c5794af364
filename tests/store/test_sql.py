"""Contract tests of the store, run against SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gatepass.errors import ConflictError, HomeError, StoreCorruptError, StoreError, StoreLockedError
from gatepass.model import (
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
from gatepass.store import SealedSecret, SqlStore, sqlite_url
from gatepass.store import schema as t
from gatepass.store.interface import SpendRow, Transaction
from gatepass.units import Budget, Period, period_start

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _wipe(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        t.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "store.db")
        return
    url = request.getfixturevalue(f"{request.param}_url")
    _wipe(url)
    yield url
    _wipe(url)


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    s = SqlStore(url, create=True)
    yield s
    s.close()


def _agent(name: str = "acme-research-dev", **kw: object) -> Agent:
    fields: dict[str, object] = dict(
        id="ag_" + name[:8],
        name=name,
        owner="me@example.com",
        email=f"me+{name}@example.com",
        description="d",
        status=AgentStatus.ACTIVE,
        mode=PolicyMode.ENFORCE,
        created_at=NOW,
        updated_at=NOW,
        budgets=(Budget(5_000_000, Period.DAY), Budget(50_000_000, Period.MONTH)),
    )
    fields.update(kw)
    return Agent(**fields)  # type: ignore[arg-type]


def _upstream(name: str = "anthropic") -> Upstream:
    return Upstream(
        name, UpstreamType.ANTHROPIC, "http://127.0.0.1:9", AuthStyle("header", "x-api-key"), "anthropic-main", NOW
    )


def test_migrated_schema_matches_the_metadata(store: SqlStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []


def test_opening_needs_a_schema_and_refuses_a_newer_one(url: str) -> None:
    with pytest.raises(HomeError, match="gatepass init"):
        SqlStore(url)
    SqlStore(url, create=True).close()
    SqlStore(url).close()  # opens without migrating again
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="upgrade gatepass"):
        SqlStore(url)


def test_agents_round_trip_with_budgets(store: SqlStore) -> None:
    agent = _agent()
    with store.transaction(write=True) as tx:
        tx.put_agent(agent)
    with store.transaction() as tx:
        assert tx.get_agent(agent.name) == agent
        assert tx.get_agent_by_id(agent.id) == agent
        assert tx.list_agents() == [agent]
    suspended = replace(agent, status=AgentStatus.SUSPENDED, status_reason="r", budgets=())
    with store.transaction(write=True) as tx:
        tx.put_agent(suspended)
    with store.transaction() as tx:
        assert tx.get_agent(agent.name) == suspended


def test_a_failed_transaction_changes_nothing(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.transaction(write=True) as tx:
        tx.put_agent(_agent())
        raise RuntimeError("boom")
    with store.transaction() as tx:
        assert tx.list_agents() == []


def test_duplicates_are_conflicts(store: SqlStore) -> None:
    with store.transaction(write=True) as tx:
        tx.put_agent(_agent())
    with pytest.raises(ConflictError), store.transaction(write=True) as tx:
        tx.put_agent(_agent(id="ag_other"))  # same name, other id


def test_upstreams_secrets_grants(store: SqlStore) -> None:
    sealed = SealedSecret("sec_1", "anthropic-main", "anthropic", b"n" * 12, b"\x00\xffcipher", "abc", NOW, None)
    grant = Grant("gr_1", "ag_acme-res", "anthropic", ("claude-*",), ("POST",), ("/v1/**",), NOW)
    with store.transaction(write=True) as tx:
        tx.put_upstream(_upstream())
        tx.put_secret(sealed)
        tx.put_agent(_agent())
        tx.add_grant(grant)
    with store.transaction() as tx:
        assert tx.get_upstream("anthropic") == _upstream()
        assert tx.get_secret("anthropic-main") == sealed
        assert tx.list_grants("ag_acme-res") == [grant]
        assert tx.list_grants() == [grant]
    with store.transaction(write=True) as tx:
        assert tx.delete_grant("gr_1")
        assert not tx.delete_grant("gr_1")
        assert tx.delete_secret("anthropic-main")
        assert tx.delete_upstream("anthropic")
        assert tx.list_upstreams() == []


def test_egress_rules_and_canaries_round_trip_feed_changes_and_go_with_their_agent(store: SqlStore) -> None:
    rule = EgressRule("eg_1", "ag_acme-res", "*.example.com", (443, 8443), NOW)
    bare = EgressRule("eg_2", "ag_acme-res", "api.example.org", (), NOW)
    canary = Canary("cn_1", "ag_acme-res", "aws", "sealed-text", "fp", ".env", False, NOW)
    with store.transaction(write=True) as tx:
        tx.put_agent(_agent())
        seq = tx.last_change_seq()
        tx.add_egress_rule(rule)
        tx.add_egress_rule(bare)
        tx.add_canary(canary)
        assert [(c.kind, c.ref) for c in tx.changes_since(seq)] == [
            ("egress", "ag_acme-res"),
            ("egress", "ag_acme-res"),
            ("canaries", "ag_acme-res"),
        ]
    with store.transaction() as tx:
        assert tx.list_egress_rules("ag_acme-res") == [rule, bare]
        assert tx.list_egress_rules("ag_other") == []
        assert tx.list_canaries() == [canary]
        assert "sealed-text" not in repr(canary)
    with store.transaction(write=True) as tx:
        assert tx.delete_egress_rule("eg_1")
        assert not tx.delete_egress_rule("eg_1")
        assert tx.list_egress_rules() == [bare]
        tx.delete_agent("ag_acme-res")
    with store.transaction() as tx:
        assert tx.list_egress_rules() == []
        assert tx.list_canaries() == []
        assert not tx.delete_canary("cn_1")


def test_spend_batches_add_to_existing_lines_and_create_new_ones(store: SqlStore) -> None:
    day, month = datetime(2026, 11, 28, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    first = [SpendRow("agent", "ag_1", Period.DAY, day, 5), SpendRow("key", "key_1", Period.MONTH, month, 7)]
    many = [SpendRow("key", f"key_{i}", Period.DAY, day, i) for i in range(4500)]  # key_1 is among them; 3 chunks
    with store.transaction(write=True) as tx:
        tx.add_spend(first)
        tx.add_spend([])
    with store.transaction(write=True) as tx:
        tx.add_spend([*first, *many])
    with store.transaction() as tx:
        lines = {(r.scope, r.owner_id, r.period, r.period_start): r.micros for r in tx.get_spend()}
    assert len(lines) == 2 + 4500
    assert lines["agent", "ag_1", Period.DAY, day] == 10
    assert lines["key", "key_1", Period.MONTH, month] == 14
    assert lines["key", "key_1", Period.DAY, day] == 1
    assert sum(lines.values()) == 10 + 14 + sum(range(4500))


def test_spend_since_a_date_keeps_every_total_line(store: SqlStore) -> None:
    old, new = datetime(2026, 10, 3, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)
    total = datetime(1970, 1, 1, tzinfo=UTC)
    with store.transaction(write=True) as tx:
        tx.add_spend(
            [
                SpendRow("key", "key_1", Period.DAY, old, 5),
                SpendRow("key", "key_1", Period.DAY, new, 7),
                SpendRow("key", "key_1", Period.TOTAL, total, 12),
            ]
        )
    with store.transaction() as tx:
        assert sorted((r.period_start, r.micros) for r in tx.get_spend(datetime(2026, 11, 1, tzinfo=UTC))) == [
            (total, 12),
            (new, 7),
        ]
        assert len(tx.get_spend()) == 3


def test_keys_with_equal_budgets_and_limits_share_them_in_memory(store: SqlStore) -> None:
    agent = _agent()
    budgets = (Budget(1_000_000, Period.DAY), Budget(9_000_000, Period.MONTH))
    with store.transaction(write=True) as tx:
        tx.put_agent(agent)
        for i in range(3):
            limits = RateLimits(rpm=60, tpm=1000 * (i // 2))  # key_0 and key_1 alike, key_2 not
            record = KeyRecord(f"key_{i}", agent.id, NOW, NOW + timedelta(hours=1), budgets=budgets, limits=limits)
            tx.add_key(replace(record, budgets=budgets[::-1]) if i == 1 else record, f"d{i}" * 32)
    with store.transaction() as tx:
        keys = sorted((record for record, _ in tx.iter_keys_with_digests()), key=lambda k: k.id)
    assert [k.budgets for k in keys] == [budgets] * 3  # in period order, whatever order they were given in
    assert keys[0].budgets is keys[1].budgets is keys[2].budgets
    assert [k.limits for k in keys] == [RateLimits(rpm=60), RateLimits(rpm=60), RateLimits(rpm=60, tpm=1000)]
    assert keys[0].limits is keys[1].limits
    with store.transaction() as tx:
        live = sorted(tx.iter_live_keys(), key=lambda found: found[0].id)
    assert [key.budgets for key, _ in live] == [budgets] * 3 and live[0][0].budgets is live[2][0].budgets
    assert live[0][0].limits is live[1][0].limits and live[2][0].limits == RateLimits(rpm=60, tpm=1000)


def test_live_keys_are_the_records_as_the_gateway_holds_them(store: SqlStore) -> None:
    agent = _agent()
    records = [
        KeyRecord("key_a", agent.id, NOW, NOW + timedelta(hours=1)),
        KeyRecord(
            "key_b",
            agent.id,
            NOW,
            NOW + timedelta(days=2),
            max_uses=5,
            uses_left=3,
            cidrs=("10.0.0.0/8", "192.168.1.7/32"),
            upstreams=("anthropic",),
            budgets=(Budget(2_000_000, Period.WEEK),),
            limits=RateLimits(concurrency=4),
        ),
        KeyRecord("key_c", agent.id, NOW, NOW + timedelta(hours=1), revoked_at=NOW, revoked_reason="leaked"),
    ]
    with store.transaction(write=True) as tx:
        tx.put_agent(agent)
        for i, record in enumerate(records):
            tx.add_key(replace(record, revoked_at=None, revoked_reason=None), f"{i:02x}" * 32)
        assert tx.revoke_keys(["key_c"], NOW, "leaked") == ["key_c"]
    with store.transaction() as tx:
        live = sorted(tx.iter_live_keys(batch=2), key=lambda found: found[0].id)
    assert live == [(LiveKey.of(record), bytes([i]) * 32) for i, record in enumerate(records)]


def test_live_keys_that_ended_before_a_moment_are_left_out(store: SqlStore) -> None:
    """The store's query and the interface's plain filter agree: a key ended when it was revoked or
    when it expired, whichever came first."""
    agent = _agent()
    day = timedelta(days=1)
    ends = {  # key id -> (expires, revoked)
        "key_live": (NOW + day, None),
        "key_expired_long_ago": (NOW - 10 * day, None),
        "key_expired_lately": (NOW - day, None),
        "key_revoked_long_ago": (NOW + day, NOW - 10 * day),
        "key_revoked_lately": (NOW + day, NOW - day),
        "key_revoked_after_it_expired": (NOW - 10 * day, NOW - day),
    }
    with store.transaction(write=True) as tx:
        tx.put_agent(agent)
        for i, (key_id, (expires, _)) in enumerate(ends.items()):
            tx.add_key(KeyRecord(key_id, agent.id, NOW - 20 * day, expires), f"{i:02x}" * 32)
        for key_id, (_, revoked) in ends.items():
            if revoked is not None:
                assert tx.revoke_keys([key_id], revoked, "test") == [key_id]
    cutoff = NOW - 7 * day
    with store.transaction() as tx:
        everything = {key.id for key, _ in tx.iter_live_keys()}
        kept = {key.id for key, _ in tx.iter_live_keys(cutoff, batch=2)}
        plain = {key.id for key, _ in Transaction.iter_live_keys(tx, cutoff)}
    assert everything == set(ends)
    assert kept == plain == {"key_live", "key_expired_lately", "key_revoked_lately"}


def test_current_spend_adds_up_the_day_rows_of_each_current_period(store: SqlStore) -> None:
    """Weeks and months are the sums of their days; a week or month row of an earlier version
    counts in nothing; the database's sums equal the interface's plain ones."""
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)  # a Friday
    day = Period.DAY
    rows = [
        SpendRow("agent", "ag_1", day, datetime(2026, 11, 27, tzinfo=UTC), 1_250_000),
        SpendRow("agent", "ag_1", day, datetime(2026, 11, 26, tzinfo=UTC), 9_000_000),  # yesterday
        SpendRow("agent", "ag_1", day, datetime(2026, 11, 20, tzinfo=UTC), 500_000),  # last week
        SpendRow("agent", "ag_1", day, datetime(2026, 10, 30, tzinfo=UTC), 7_000_000),  # last month
        SpendRow("agent", "ag_1", Period.TOTAL, period_start(Period.TOTAL, now), 20_000_000),
        SpendRow("key", "key_1", day, datetime(2026, 11, 2, tzinfo=UTC), 400_000),
        SpendRow("key", "key_1", Period.MONTH, datetime(2026, 11, 1, tzinfo=UTC), 400_000),  # as earlier versions
        SpendRow("key", "key_2", Period.TOTAL, period_start(Period.TOTAL, now), 3),  # spent long ago only
    ]
    with store.transaction(write=True) as tx:
        tx.add_spend(rows)
    with store.transaction() as tx:
        summed = list(tx.current_spend(now, batch=2))
        plain = list(Transaction.current_spend(tx, now))
    starts = {p: period_start(p, now) for p in Period}
    expected = {
        SpendRow("agent", "ag_1", day, starts[day], 1_250_000),
        SpendRow("agent", "ag_1", Period.WEEK, starts[Period.WEEK], 10_250_000),
        SpendRow("agent", "ag_1", Period.MONTH, starts[Period.MONTH], 10_750_000),
        SpendRow("agent", "ag_1", Period.TOTAL, starts[Period.TOTAL], 20_000_000),
        SpendRow("key", "key_1", Period.MONTH, starts[Period.MONTH], 400_000),
        SpendRow("key", "key_2", Period.TOTAL, starts[Period.TOTAL], 3),
    }
    assert len(summed) == len(plain) == len(expected)  # one row per owner and period
    assert set(summed) == set(plain) == expected


def test_touch_keys_records_each_keys_last_use(store: SqlStore) -> None:
    agent = _agent()
    with store.transaction(write=True) as tx:
        tx.put_agent(agent)
        for i in range(3):
            tx.add_key(KeyRecord(f"key_{i}", agent.id, NOW, NOW + timedelta(hours=1)), f"d{i}" * 32)
    with store.transaction(write=True) as tx:
        tx.touch_keys([("key_0", NOW, "10.0.0.1"), ("key_2", NOW + timedelta(seconds=5), None)])
    with store.transaction() as tx:
        used = [tx.get_key(f"key_{i}") for i in range(3)]
    assert [(k.last_used_at, k.last_used_ip) for k in used if k is not None] == [
        (NOW, "10.0.0.1"),
        (None, None),
        (NOW + timedelta(seconds=5), None),
    ]


def test_touch_keys_in_statements_of_many_rows(store: SqlStore) -> None:
    """700 keys: statements of 32, 8 and 1 rows, each key with its own time and address."""
    agent = _agent()
    with store.transaction(write=True) as tx:
        tx.put_agent(agent)
        for i in range(700):
            tx.add_key(KeyRecord(f"key_{i:03d}", agent.id, NOW, NOW + timedelta(hours=1)), f"{i:064x}")
    uses = [
        (f"key_{i:03d}", NOW + timedelta(seconds=i), f"10.0.{i // 256}.{i % 256}" if i % 3 else None)
        for i in range(700)
    ]
    with store.transaction(write=True) as tx:
        tx.touch_keys(uses[:699])
    with store.transaction() as tx:
        found = {k.id: (k.last_used_at, k.last_used_ip) for k in tx.list_keys(agent.id)}
    assert found == {key_id: (at, ip) for key_id, at, ip in uses[:699]} | {"key_699": (None, None)}


def test_keys_use_revoke_and_cascade(store: SqlStore) -> None:
    agent = _agent()
    single = KeyRecord(
        "key_1",
        agent.id,
        NOW,
        NOW + timedelta(hours=1),
        max_uses=1,
        uses_left=1,
        cidrs=("127.0.0.1/32",),
        upstreams=("anthropic",),
        budgets=(Budget(1_000_000, Period.DAY),),
    )
    plain = KeyRecord("key_2", agent.id, NOW, NOW + timedelta(hours=1))
    with store.transaction(write=True) as tx:
        tx.put_agent(agent)
        tx.add_key(single, "d1" * 32)
        tx.add_key(plain, "d2" * 32)
    with store.transaction(write=True) as tx:
        assert tx.find_key("d1" * 32) == single
        assert tx.find_key("nope") is None
        assert tx.consume_key_use("key_1", NOW, "127.0.0.1")
        assert not tx.consume_key_use("key_1", NOW, "127.0.0.1")  # the only use is gone
        assert tx.consume_key_use("key_2", NOW, "10.0.0.1")
        assert tx.consume_key_use("key_2", NOW, "10.0.0.1")
    with store.transaction(write=True) as tx:
        used = tx.get_key("key_1")
        assert used is not None and used.uses_left == 0 and used.last_used_ip == "127.0.0.1"
        assert tx.revoke_keys(["key_1", "key_2"], NOW, "test") == ["key_1", "key_2"]
        assert tx.revoke_keys(["key_1"], NOW, "again") == []
        assert tx.delete_agent(agent.id)
    with store.transaction() as tx:
        assert tx.list_keys() == []


def test_meta(store: SqlStore) -> None:
    with store.transaction(write=True) as tx:
        tx.set_meta("a", "1")
        tx.set_meta("a", "2")
    with store.transaction() as tx:
        assert tx.get_meta("a") == "2"
        assert tx.get_meta("missing") is None


def test_concurrent_single_use_consumption_gives_exactly_one_use(store: SqlStore) -> None:
    agent = _agent()
    with store.transaction(write=True) as tx:
        tx.put_agent(agent)
        tx.add_key(KeyRecord("key_1", agent.id, NOW, NOW + timedelta(hours=1), max_uses=1, uses_left=1), "d" * 64)
    wins: list[bool] = []

    def take() -> None:
        with store.transaction(write=True) as tx:
            wins.append(tx.consume_key_use("key_1", NOW, None))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert sorted(wins) == [False] * 7 + [True]


def test_corrupted_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorruptError, match="restore it from a backup"):
        SqlStore(sqlite_url(path))


def test_locked_sqlite_store_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.db"
    SqlStore(sqlite_url(path), create=True).close()
    monkeypatch.setattr("gatepass.store.sql._BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = SqlStore(sqlite_url(path))
        with pytest.raises(StoreLockedError, match="locked by another process"), store.transaction(write=True):
            pass
        store.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
