"""``gatepass run`` end to end: a key per child, revoked however it ends, and nothing of the owner's."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatepass.control.app import Gatepass
from gatepass.control.canaries import planted_environment, planted_files
from gatepass.control.run import RunRequest, _private_paths
from tests.conftest import Gp, fake_secret
from tests.dataplane.harness import GatewayThread, http
from tests.runner.helpers import AGENT, HAIKU, World, set_run_config, start_run, world


@pytest.fixture
def w(gp: Gp, home: Path, tmp_path: Path) -> Iterator[World]:
    with world(gp, home, tmp_path) as made:
        yield made


def _refused(url: str, key: str) -> tuple[int, str | None]:
    body = json.dumps({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "again"}]})
    reply = http("POST", url + "/anthropic/v1/messages", headers={"x-api-key": key}, body=body.encode())
    return reply.status, reply.headers.get("x-gatepass-denied")


def _assert_revoked(w: World, key_id: str, key: str, url: str) -> None:
    record = w.key(key_id)
    assert record["state"] == "revoked" and record["revoked_reason"].startswith("gatepass run ended"), record
    assert _refused(url, key) == (401, "key_revoked")
    issued = [r for r in w.audit("key.issue") if r["target"] == key_id]
    revoked = [r for r in w.audit("key.revoke") if r["target"] == key_id]
    assert len(issued) == 1 and len(revoked) == 1


def test_the_child_gets_exactly_the_allowlist_and_its_own_key_which_works_until_it_exits(w: World) -> None:
    gp = w.gp
    assert gp("upstream", "add", "docs-api", "--type", "http", "--base-url", w.fake.url, "--auth", "none").code == 0
    assert gp("allow", AGENT, "docs-api").code == 0
    assert gp("canary", "add", AGENT, "--kind", "aws").code == 0
    assert gp("canary", "add", AGENT, "--kind", "stripe", "--file", ".env").code == 0
    assert gp("canary", "add", AGENT, "--kind", "aws", "--file", ".aws/credentials").code == 0
    assert gp("canary", "add", AGENT, "--kind", "github", "--file", "mine.env").code == 0
    (w.work / "mine.env").write_text("OWNER=file\n")  # exists: never overwritten, never removed
    set_run_config(w.gphome, env='["MY_TOOL_SETTING", "UNSET_SETTING"]')
    env = {**w.env, "MY_TOOL_SETTING": "visible", "FROM_PARENT": "passed"}
    assert w.gateway is not None

    run = start_run(
        env,
        w.work,
        ["env", "read:.env", "read:.aws/credentials", "read:mine.env", "sdk", "proxy:http://not-allowed.example/"],
        "--env",
        "EXTRA_SETTING=on",
        "--env",
        "FROM_PARENT",
        "--env",
        "NOT_SET_ANYWHERE",
    )
    assert run.finish() == 0, run.stderr
    seen = run.seen()
    child = seen["env"]
    key = child["GATEPASS_KEY"]
    url = w.gateway.url
    port = url.rsplit(":", 1)[1]
    with Gatepass.open() as app, app.read() as tx:
        agent_id = tx.get_agent(AGENT).id  # type: ignore[union-attr]
        decoys = planted_environment(tx, app.vault, agent_id)
        files = dict(planted_files(tx, app.vault, agent_id))

    allowlisted = {"PATH", "HOME", "LANG", "LC_MESSAGES", "TERM", "TZ", "USER", "LOGNAME", "SHELL"}
    gatepass = {
        "GATEPASS_KEY": key,
        "GATEPASS_URL": url,
        "ANTHROPIC_BASE_URL": f"{url}/anthropic",
        "ANTHROPIC_API_KEY": key,
        "OPENAI_BASE_URL": f"{url}/openai/v1",
        "OPENAI_API_KEY": key,
        "GATEPASS_DOCS_API_URL": f"{url}/docs-api",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
        "PWD": str(w.work),
        **{name: f"http://{AGENT}:{key}@127.0.0.1:{port}" for name in ("HTTP_PROXY", "HTTPS_PROXY")},
        **{name: f"http://{AGENT}:{key}@127.0.0.1:{port}" for name in ("http_proxy", "https_proxy")},
    }
    extras = {"MY_TOOL_SETTING": "visible", "EXTRA_SETTING": "on", "FROM_PARENT": "passed"}
    assert set(decoys) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert child == {**{n: w.env[n] for n in allowlisted}, **decoys, **extras, **gatepass}
    assert key.startswith("gp_")

    # Nothing of the owner's, by value: not in the environment, the files it read, or anything printed.
    everything = json.dumps(seen) + run.stdout + run.stderr
    for name, value in {**w.owner, **w.upstream_secrets}.items():
        assert value not in everything, name
    assert key not in run.stdout + run.stderr

    # The decoy files were there for the child, and are gone; the owner's file is untouched.
    assert seen["read:.env"] == files[".env"] and seen["read:.aws/credentials"] == files[".aws/credentials"]
    assert seen["read:mine.env"] == "OWNER=file\n"
    assert not (w.work / ".env").exists() and not (w.work / ".aws").exists()
    assert (w.work / "mine.env").read_text() == "OWNER=file\n"

    # The SDK, configured by the environment alone, went through the gateway with the real credential.
    assert seen["sdk"]
    assert w.fake.requests[-1].headers["x-api-key"] == w.upstream_secrets["anthropic"]
    # The proxy variables lead to the egress proxy, which knows the key (else 407) and denies the host.
    assert seen["proxy"] == [403, "host_not_allowed"]
    assert "using the running gateway at " + url in run.stderr
    assert w.key(run.key_id())["cidrs"] == ["127.0.0.1/32"]
    _assert_revoked(w, run.key_id(), key, url)


@pytest.mark.parametrize(("last", "status"), [("exit:3", 3), ("kill:9", 137)])
def test_the_key_is_revoked_when_the_child_fails_or_dies(w: World, last: str, status: int) -> None:
    assert w.gateway is not None
    run = start_run(w.env, w.work, ["env", "http", last])
    assert run.finish() == status, run.stderr
    seen = run.seen()
    assert seen["http"] == 200  # the key worked while the child ran
    assert f"the agent exited with status {status}" in run.stderr
    _assert_revoked(w, run.key_id(), seen["env"]["GATEPASS_KEY"], w.gateway.url)


def test_without_a_running_gateway_the_run_starts_one_and_points_the_primary_upstream(
    gp: Gp, home: Path, tmp_path: Path
) -> None:
    with world(gp, home, tmp_path, gateway=False) as w:
        assert gp("upstream", "add", "anthropic-backup", "--type", "anthropic", "--base-url", w.fake.url).code == 0
        assert gp("allow", AGENT, "anthropic-backup").code == 0
        set_run_config(w.gphome, grace_seconds="1.0")
        run = start_run(w.env, w.work, ["env", "http"])
        assert run.finish() == 0, run.stderr
        child = run.seen()["env"]
        started = [line for line in run.stderr.splitlines() if "started a gateway for this run at" in line]
        assert len(started) == 1 and child["GATEPASS_URL"] in started[0]
        assert child["ANTHROPIC_BASE_URL"] == child["GATEPASS_URL"] + "/anthropic"
        assert "anthropic variables point at upstream anthropic, not anthropic-backup" in run.stderr
        assert run.seen()["http"] == 200
        assert not (home / "gateway.json").exists()  # the run's gateway is gone with it

        gateway = GatewayThread()
        try:
            _assert_revoked(w, run.key_id(), child["GATEPASS_KEY"], gateway.url)
        finally:
            gateway.stop()


def test_a_value_given_with_env_is_not_in_the_requests_repr() -> None:
    value = fake_secret("sk-ant-")
    request = RunRequest(agent=AGENT, command=("agent",), env=(f"ANTHROPIC_TOKEN={value}",))
    assert value not in repr(request)


def test_the_sandbox_hides_a_store_kept_outside_the_home(gp: Gp, home: Path, tmp_path: Path) -> None:
    store = tmp_path / "elsewhere" / "store.db"
    store.parent.mkdir()
    env = {**os.environ, "GATEPASS_STORE_URL": f"sqlite:///{store}"}
    assert gp("init", env={"GATEPASS_STORE_URL": f"sqlite:///{store}"}).code == 0
    with Gatepass.open(env=env) as app:
        paths = _private_paths(app)
    assert paths[:2] == [home, store] and store.with_name("store.db-wal") in paths


def test_an_error_in_gatepass_itself_still_revokes_the_key(w: World) -> None:
    assert w.gp("canary", "add", AGENT, "--kind", "stripe", "--file", "blocker/.env").code == 0
    (w.work / "blocker").write_text("a file where the decoy's folder should be")
    run = start_run(w.env, w.work, ["write:ran.txt"])
    assert run.finish() == 1, run.stderr
    assert "gatepass: error: Not a directory" in run.stderr
    assert not (w.work / "ran.txt").exists()
    assert "stopped before the agent started" not in run.stderr
    record = w.key(run.key_id())
    assert record["state"] == "revoked" and record["revoked_reason"] == "gatepass run ended: gatepass run failed"
