"""``gatepass run --sandbox`` for real (bubblewrap): no way out but the gateway, no credential file in sight.

Skipped when bwrap cannot make namespaces on this machine, unless GATEPASS_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatepass.control.app import Gatepass
from gatepass.control.canaries import planted_files
from gatepass.errors import GatepassError
from gatepass.runner.sandbox import find_bwrap
from tests.conftest import Gp, _skip_or_fail, fake_secret
from tests.dataplane.harness import http
from tests.runner.helpers import AGENT, HAIKU, World, set_run_config, start_run, world


@pytest.fixture(scope="module")
def bwrap() -> str:
    try:
        return find_bwrap(os.environ.get("PATH"))
    except GatepassError as exc:
        _skip_or_fail(f"bubblewrap cannot run a sandbox here: {exc.message}")
        raise


@pytest.fixture
def w(bwrap: str, gp: Gp, home: Path, tmp_path: Path) -> Iterator[World]:
    with world(gp, home, tmp_path) as made:
        yield made


def test_the_sandbox_reaches_only_the_gateway_and_sees_no_credential_file(w: World, tmp_path: Path) -> None:
    # The working folder holds the owner's home and the gatepass home, so that only hiding keeps them out.
    secrets = {
        "home/.ssh/id_ed25519": fake_secret("-----BEGIN OPENSSH PRIVATE KEY-----"),
        "home/.aws/credentials": "[default]\naws_secret_access_key = " + fake_secret(),
        "home/.netrc": "machine example.com password " + fake_secret(),
        ".env": "OPENAI_API_KEY=" + fake_secret("sk-proj-"),
        "work/.env.local": "DATABASE_URL=" + fake_secret("postgresql://u:"),
    }
    for rel, text in secrets.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert w.gp("canary", "add", AGENT, "--kind", "github", "--file", "conf/.env.canary").code == 0
    with Gatepass.open() as app, app.read() as tx:
        decoy = dict(planted_files(tx, app.vault, tx.get_agent(AGENT).id))["conf/.env.canary"]  # type: ignore[union-attr]
    host_service = socket.socket()
    host_service.bind(("127.0.0.1", 0))
    host_service.listen()
    port = host_service.getsockname()[1]
    reads = [*secrets, "gphome/master.key", "gphome/gatepass.db", "conf/.env.canary"]
    steps = [
        "env",
        *(f"read:{r}" for r in reads),
        f"connect:{port}",
        "write:written.txt",
        "caps",
        "sdk",
        "proxy:http://a.example/",
    ]
    try:
        run = start_run(w.env, tmp_path, steps, "--sandbox")
        assert run.finish() == 0, run.stderr
    finally:
        host_service.close()
    seen = run.seen()
    assert seen["sdk"], run.stderr  # through the relay to the gateway, and on to the fake upstream
    assert w.fake.requests[-1].headers["x-api-key"] == w.upstream_secrets["anthropic"]
    assert seen["connect"].startswith("error: ")  # the host's loopback is not the sandbox's
    assert seen["proxy"] == [403, "host_not_allowed"]  # the egress proxy, through the relay, knows the key
    for rel in ("home/.ssh/id_ed25519", "home/.aws/credentials", "gphome/master.key", "gphome/gatepass.db"):
        assert seen[f"read:{rel}"] == "error: FileNotFoundError", rel
    for rel in ("home/.netrc", ".env", "work/.env.local"):
        assert seen[f"read:{rel}"] == "", rel
    assert seen["read:conf/.env.canary"] == decoy  # planted for the run: visible, then removed
    assert not (tmp_path / "conf").exists()
    assert (tmp_path / "written.txt").read_text() == "written"
    assert seen["caps"] == "0000000000000000"

    child = seen["env"]
    key = child["GATEPASS_KEY"]
    inside = "http://127.0.0.1:8790"
    assert child["GATEPASS_URL"] == inside and child["ANTHROPIC_BASE_URL"] == inside + "/anthropic"
    assert child["HTTPS_PROXY"] == f"http://{AGENT}:{key}@127.0.0.1:8790" and child["NO_PROXY"] == "127.0.0.1"
    assert set(child) == {
        *("PATH", "HOME", "LANG", "LC_MESSAGES", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "PWD"),
        *("GATEPASS_KEY", "GATEPASS_URL", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL"),
        *("OPENAI_API_KEY", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"),
    }
    everything = json.dumps(seen) + run.stdout + run.stderr
    for name, value in {**w.owner, **w.upstream_secrets, **secrets}.items():
        assert value not in everything, name

    assert w.gateway is not None
    assert w.key(run.key_id())["state"] == "revoked"
    body = json.dumps({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}).encode()
    reply = http("POST", w.gateway.url + "/anthropic/v1/messages", headers={"x-api-key": key}, body=body)
    assert (reply.status, reply.headers.get("x-gatepass-denied")) == (401, "key_revoked")


@pytest.mark.parametrize(
    ("steps", "send", "status"),
    [
        (["exit:4"], None, 4),
        (["ready", "sleep"], signal.SIGTERM, 128 + signal.SIGTERM),
        (["trap", "ready", "sleep"], signal.SIGTERM, 128 + signal.SIGKILL),
    ],
    ids=["exit-status", "sigterm-passed-in", "killed-after-grace"],
)
def test_signals_and_exit_statuses_cross_the_sandbox(
    w: World, steps: list[str], send: signal.Signals | None, status: int
) -> None:
    set_run_config(w.gphome, grace_seconds="1.0")
    run = start_run(w.env, w.work, steps, "--sandbox")
    if send is not None:
        run.wait_for("ready")
        run.process.send_signal(send)
    assert run.finish() == status, run.stderr
    assert w.key(run.key_id())["state"] == "revoked"
