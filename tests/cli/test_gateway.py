"""``gatepass serve`` as a process: one per home, health and metrics, clean SIGTERM, no spend lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from gatepass.testing.fake_upstream import fake_upstream_in_thread
from tests.conftest import Gp
from tests.dataplane.harness import http, prepare_home

HAIKU = "claude-haiku-4-5-20251001"


def _serve(home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "GATEPASS_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "gatepass", "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _info(home: Path, process: subprocess.Popen[str]) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        path = home / "gateway.json"
        if path.exists():
            info = json.loads(path.read_text())
            if info["pid"] == process.pid:  # not a stale file left by a killed gateway
                return info  # type: ignore[no-any-return]
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the gateway did not start")


@pytest.fixture
def served(gp: Gp, home: Path) -> Iterator[tuple[Gp, Path, subprocess.Popen[str], dict[str, str], str]]:
    with fake_upstream_in_thread() as fake:
        prepare_home(gp, fake.url)
        key = gp("key", "issue", "acme-research-dev").out.strip()
        process = _serve(home)
        try:
            yield gp, home, process, _info(home, process), key
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)


def test_serve_runs_one_gateway_per_home_and_stops_cleanly(served: tuple) -> None:  # type: ignore[type-arg]
    gp, home, process, info, key = served
    second = _serve(home)
    _, err = second.communicate(timeout=30)
    assert second.returncode == 1
    assert f"pid {info['pid']}" in err and "already serves" in err and err.count("\n") == 1

    assert http("GET", info["admin_url"] + "/healthz").status == 200
    assert http("GET", info["admin_url"] + "/metrics").status == 401
    token = (home / "admin.token").read_text().strip()
    client = anthropic.Anthropic(base_url=info["listen"] + "/anthropic", api_key=key)
    client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    metrics = http("GET", info["admin_url"] + "/metrics", headers={"authorization": f"Bearer {token}"})
    assert metrics.status == 200
    assert b'gatepass_requests_total{decision="allow",reason="allowed",upstream="anthropic"} 1.0' in metrics.body
    assert http("GET", info["listen"] + "/metrics").status == 404  # nothing administrative on the data plane

    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert not (home / "gateway.json").exists()
    records = json.loads(gp("audit", "tail", "-n", "3", "--json").out)
    assert records[-1]["action"] == "gateway.stop"
    assert gp("audit", "verify").code == 0
    spend = json.loads(gp("spend", "--json").out)  # the gateway is gone: figures from the store
    assert spend["source"] == "store"
    month = next(p for p in spend["agents"][0]["periods"] if p["period"] == "month")
    assert month["spent_micros"] > 0


def test_a_killed_gateway_loses_no_spend(served: tuple) -> None:  # type: ignore[type-arg]
    gp, home, process, info, key = served
    client = anthropic.Anthropic(base_url=info["listen"] + "/anthropic", api_key=key)
    for i in range(3):
        client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": f"q{i}"}])
    process.kill()  # no chance to write its spend
    process.communicate(timeout=10)
    charged = sum(
        r["meta"]["cost_micros"] for r in json.loads(gp("audit", "tail", "--action", "request", "--json").out)
    )
    restarted = _serve(home)
    try:
        _info(home, restarted)
        live = json.loads(gp("spend", "--json").out)
        assert live["source"] == "gateway"
        month = next(p for p in live["agents"][0]["periods"] if p["period"] == "month")
        assert month["spent_micros"] == charged > 0
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.communicate(timeout=60)


def test_cli_changes_reach_the_running_gateway_at_once(served: tuple) -> None:  # type: ignore[type-arg]
    gp, _home, _process, info, key = served
    client = anthropic.Anthropic(base_url=info["listen"] + "/anthropic", api_key=key, max_retries=0)
    client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert gp("revoke", "acme-research-dev").code == 0
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "hi again"}])
