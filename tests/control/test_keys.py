"""Using keys through the control layer: single use, expiry, HMAC-only storage, audited decisions."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gatepass.audit import tail_directory
from gatepass.control import agents, grants, keys
from gatepass.control.app import Gatepass, init_home
from gatepass.keyformat import generate_key
from gatepass.policy.decision import Reason, Request, Result
from gatepass.sensitive import Secret


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(home: Path, clock: Clock) -> Iterator[Gatepass]:
    init_home(clock=clock)
    with Gatepass.open(clock=clock, actor="test") as opened:
        with opened.session() as s:
            from gatepass.control.upstreams import add_upstream
            from gatepass.model import UpstreamType

            add_upstream(s, "anthropic", UpstreamType.ANTHROPIC)
            agents.create_agent(s, "acme-research-dev", owner="me@example.com")
            grants.add_grant(s, "acme-research-dev", "anthropic")
        yield opened


def request(clock: Clock, source_ip: str | None = "127.0.0.1") -> Request:
    return Request(
        upstream="anthropic",
        method="POST",
        path="/v1/messages",
        now=clock.now,
        model="claude-haiku-4-5",
        source_ip=source_ip,
    )


def issue(app: Gatepass, **kw: object) -> Secret:
    with app.session() as s:
        key, _ = keys.issue_key(s, "acme-research-dev", **kw)  # type: ignore[arg-type]
    return key


def test_single_use_key_works_once(app: Gatepass, clock: Clock) -> None:
    key = issue(app, uses=1)
    assert keys.use_key(app, key, request(clock)).result is Result.ALLOW
    second = keys.use_key(app, key, request(clock))
    assert (second.result, second.reason) == (Result.DENY, Reason.KEY_USED_UP)


def test_expired_key_is_refused(app: Gatepass, clock: Clock) -> None:
    key = issue(app, ttl=timedelta(minutes=5))
    assert keys.use_key(app, key, request(clock)).allowed
    clock.now += timedelta(minutes=5)
    decision = keys.use_key(app, key, request(clock))
    assert (decision.result, decision.reason) == (Result.DENY, Reason.KEY_EXPIRED)


def test_revoked_suspended_and_cidr_bound_keys(app: Gatepass, clock: Clock) -> None:
    bound = issue(app, cidrs=["10.0.0.0/8"])
    assert keys.use_key(app, bound, request(clock, "10.9.9.9")).allowed
    assert keys.use_key(app, bound, request(clock, "127.0.0.1")).reason is Reason.SOURCE_NOT_ALLOWED
    with app.session() as s:
        agents.suspend_agent(s, "acme-research-dev")
    assert keys.use_key(app, bound, request(clock, "10.9.9.9")).reason is Reason.AGENT_SUSPENDED
    with app.session() as s:
        agents.resume_agent(s, "acme-research-dev")
        agents.kill_agent(s, "acme-research-dev")
    assert keys.use_key(app, bound, request(clock, "10.9.9.9")).reason is Reason.KEY_REVOKED


def test_malformed_and_unknown_keys(app: Gatepass, clock: Clock) -> None:
    real = issue(app).reveal()
    typo = real[:-1] + ("A" if real[-1] != "A" else "B")
    assert keys.use_key(app, Secret(typo), request(clock)).reason is Reason.KEY_MALFORMED
    assert keys.use_key(app, generate_key(), request(clock)).reason is Reason.KEY_UNKNOWN


def test_keys_are_stored_only_as_hmac(app: Gatepass, home: Path) -> None:
    key = issue(app).reveal()
    db = sqlite3.connect(home / "gatepass.db")
    (digest,) = db.execute("SELECT digest FROM keys").fetchone()
    db.close()
    assert digest == app.vault.key_digest(Secret(key))
    assert digest not in (hashlib.sha256(key.encode()).hexdigest(), key)
    for path in home.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes()


def test_every_use_is_audited_with_its_reason(app: Gatepass, clock: Clock, home: Path) -> None:
    key = issue(app, uses=1)
    keys.use_key(app, key, request(clock))
    keys.use_key(app, key, request(clock))
    app.audit.checkpoint()
    uses = tail_directory(home / "audit", 10, lambda r: r.action == "key.use")
    assert [(r.decision, r.reason) for r in uses] == [("allow", "allowed"), ("deny", "key_used_up")]
    assert all(key.reveal() not in str(r) for r in uses)
