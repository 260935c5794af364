"""The gateway's in-memory view: loaded from the store, kept current by the change feed."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from gatepass.control import agents, grants, keys
from gatepass.control.app import Gatepass, init_home
from gatepass.control.credentials import add_secret
from gatepass.control.upstreams import add_upstream
from gatepass.dataplane.state import Credential, RuntimeState, credential_for
from gatepass.model import AuthStyle, LiveKey, UpstreamType
from gatepass.sensitive import Secret
from tests.conftest import fake_secret


def test_credential_styles_and_masking() -> None:
    value = fake_secret()
    bearer = credential_for(AuthStyle("bearer"), Secret(value))
    assert bearer is not None and bearer.header() == (b"authorization", b"Bearer " + value.encode())
    basic = credential_for(AuthStyle("basic"), Secret("user:pw"))
    assert basic is not None and basic.header()[1] == b"Basic " + base64.b64encode(b"user:pw")
    header = credential_for(AuthStyle("header", "X-Api-Key"), Secret(value))
    assert header is not None and header.header() == (b"x-api-key", value.encode())
    assert credential_for(AuthStyle("none"), Secret(value)) is None
    assert value not in repr(bearer) and "secure" in repr(Credential(b"x", value.encode()))


def test_load_and_apply_changes(home: Path) -> None:
    init_home()
    with Gatepass.open(actor="test") as app:
        value = fake_secret()
        with app.session() as s:
            add_upstream(s, "anthropic", UpstreamType.ANTHROPIC, base_url="http://127.0.0.1:9/", secret_name="main")
            add_secret(s, "main", "anthropic", Secret(value))
            openai = add_upstream(s, "openai", UpstreamType.OPENAI, base_url="http://127.0.0.1:9/v1")
            # The CLI refuses this; a store edited by hand could hold it.
            s.tx.put_upstream(replace(openai, secret_name="main"))
            agents.create_agent(s, "acme-research-dev", owner="me@example.com")
            grants.add_grant(s, "acme-research-dev", "anthropic")
            keys.issue_key(s, "acme-research-dev")
        state = RuntimeState(app.vault)
        with app.read() as tx:
            state.load(tx)
        anthropic = state.upstreams["anthropic"]
        assert anthropic.credential is not None and anthropic.credential.header() == (b"x-api-key", value.encode())
        openai = state.upstreams["openai"]
        # The secret belongs to anthropic: it is never sent to another upstream's host (invariant 1).
        assert openai.credential is None and openai.problem and "belongs to upstream anthropic" in openai.problem
        assert openai.base_path == b"/v1"
        assert len(state.keys) == 1 and len(state.agents) == 1
        assert [len(g) for g in state.grants.values()] == [1]
        seq = state.seq
        with app.session() as s:
            agents.kill_agent(s, "acme-research-dev")
        with app.read() as tx:
            applied = state.apply(tx, tx.changes_since(seq))
        assert applied >= 2 and state.seq > seq
        ((digest, record),) = state.keys.items()
        assert isinstance(record, LiveKey) and record.revoked_at is not None
        assert next(iter(state.agents.values())).status.value == "suspended"
        only_agents = RuntimeState(app.vault)  # a feed that names the agent but none of its keys
        with app.read() as tx:
            only_agents.load(tx)
        with app.session() as s:
            agents.delete_agent(s, "acme-research-dev")
        with app.read() as tx:
            changes = tx.changes_since(state.seq)
            state.apply(tx, changes)
            only_agents.apply(tx, [c for c in changes if c.kind == "agent"])
        assert state.keys == {} and state.agents == {}
        assert only_agents.keys == {} and only_agents.agents == {}
        state.replace_key(digest, record)  # a use counted while the key was being deleted
        assert state.keys == {}  # does not bring it back


def test_keys_that_ended_before_a_moment_are_not_loaded_and_are_forgotten(home: Path) -> None:
    init_home()
    with Gatepass.open(actor="test") as app:
        with app.session() as s:
            agents.create_agent(s, "acme-research-dev", owner="me@example.com")
            issued = {
                name: keys.issue_key(s, "acme-research-dev", ttl=timedelta(days=days))[1].id
                for name, days in (("short", 1), ("long", 20), ("revoked", 20))
            }
            keys.revoke_key(s, issued["revoked"])
        now = app.now()
        everything = RuntimeState(app.vault)
        later = RuntimeState(app.vault)
        with app.read() as tx:
            everything.load(tx)
            later.load(tx, ended_after=now + timedelta(days=2))
        assert {k.id for k in everything.keys.values()} == set(issued.values())
        assert {k.id for k in later.keys.values()} == {issued["long"]}
        told: list[tuple[str, list[str]]] = []
        everything.on_forget = lambda scope, ids: told.append((scope, sorted(ids)))
        assert everything.forget_ended(now - timedelta(seconds=5)) == [] and told == []
        ended = sorted([issued["short"], issued["revoked"]])
        assert sorted(everything.forget_ended(now + timedelta(days=2))) == ended
        assert {k.id for k in everything.keys.values()} == {issued["long"]} and told == [("key", ended)]
        assert everything.forget_ended(now + timedelta(days=21)) == [issued["long"]] and everything.keys == {}
        assert told[1:] == [("key", [issued["long"]])]


def test_agents_and_keys_deleted_are_forgotten_elsewhere_too(home: Path) -> None:
    init_home()
    with Gatepass.open(actor="test") as app:
        with app.session() as s:
            for name in ("acme-research-dev", "acme-writer-dev"):
                agents.create_agent(s, name, owner="me@example.com")
            doomed = sorted(keys.issue_key(s, "acme-research-dev")[1].id for _ in range(2))
            kept = keys.issue_key(s, "acme-writer-dev")[1].id
        state = RuntimeState(app.vault)
        told: list[tuple[str, list[str]]] = []
        state.on_forget = lambda scope, ids: told.append((scope, sorted(ids)))
        with app.read() as tx:
            state.load(tx)
        doomed_agent = state.agent_ids["acme-research-dev"]
        with app.session() as s:
            agents.delete_agent(s, "acme-research-dev")
        with app.read() as tx:
            state.apply(tx, tx.changes_since(state.seq))
        assert told == [("key", doomed), ("agent", [doomed_agent])]
        assert [k.id for k in state.keys.values()] == [kept] and list(state.agent_ids) == ["acme-writer-dev"]
