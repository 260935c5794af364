"""``gatepass run`` as a command: signals, exit statuses, the grace period, and refusals that change nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Gp
from tests.runner.helpers import AGENT, World, set_run_config, start_run, world


@pytest.fixture
def w(gp: Gp, home: Path, tmp_path: Path) -> Iterator[World]:
    with world(gp, home, tmp_path) as made:
        yield made


def _nothing_issued(gp: Gp) -> None:
    assert json.loads(gp("key", "list", "--all", "--json").out) == []
    assert json.loads(gp("audit", "tail", "--action", "key.issue", "--json").out) == []


def test_sigterm_is_passed_to_the_child_and_its_death_becomes_128_plus_n(w: World) -> None:
    run = start_run(w.env, w.work, ["env", "ready", "sleep"])
    run.wait_for("ready")
    run.process.send_signal(signal.SIGTERM)
    assert run.finish() == 128 + signal.SIGTERM, run.stderr
    assert w.key(run.key_id())["state"] == "revoked"
    assert "the agent exited with status 143" in run.stderr


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(w: World) -> None:
    set_run_config(w.gphome, grace_seconds="1.5")
    run = start_run(w.env, w.work, ["env", "trap", "ready", "sleep"])
    run.wait_for("ready")
    started = time.monotonic()
    run.process.send_signal(signal.SIGTERM)
    assert run.finish() == 128 + signal.SIGKILL, run.stderr
    assert 1.5 <= time.monotonic() - started < 30
    assert "the agent did not stop within 1.5s: killed it" in run.stderr
    assert w.key(run.key_id())["state"] == "revoked"


def test_other_signals_are_passed_on_and_sigint_ends_the_child(w: World) -> None:
    run = start_run(w.env, w.work, ["usr1", "ready", "sleep"])
    run.wait_for("ready")
    run.process.send_signal(signal.SIGUSR1)
    run.wait_for("usr1")  # the child's handler ran: gatepass run passed it on and lived
    run.process.send_signal(signal.SIGINT)
    assert run.finish() == 128 + signal.SIGINT, run.stderr
    assert w.key(run.key_id())["state"] == "revoked"


def test_a_command_that_does_not_exist_exits_127_and_its_key_is_revoked(w: World) -> None:
    missing = str(w.work / "no-such-program")
    process = subprocess.run(
        [sys.executable, "-m", "gatepass", "run", AGENT, "--", missing, "--flag"],
        env=w.env,
        cwd=w.work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 127, process.stderr
    errors = [line for line in process.stderr.splitlines() if "error" in line]
    assert errors == [f"gatepass: error: command not found: {missing}: check its name, or give its path"]
    keys = json.loads(w.gp("key", "list", "--all", "--json").out)
    assert keys and all(k["state"] == "revoked" for k in keys)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--env", "ANTHROPIC_API_KEY=sk-secret-value"], "--env names ANTHROPIC_API_KEY, which gatepass run sets"),
        (["--env", "HTTPS_PROXY"], "--env names HTTPS_PROXY, which gatepass run sets itself"),
        (["--env", "GATEPASS_ANYTHING=1"], "--env names GATEPASS_ANYTHING"),
        (["--env", "NOT A NAME=sk-secret-value"], "invalid environment variable name 'NOT A NAME' in --env"),
        (["--ttl", "soon"], "invalid TTL"),
    ],
)
def test_bad_options_are_refused_before_anything_is_issued(
    ready: Gp, tmp_path: Path, args: list[str], expected: str
) -> None:
    marker = tmp_path / "ran"
    result = ready("run", *args, AGENT, "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    assert result.code == 2, result
    assert expected in result.err and result.err.count("\n") == 1
    assert "sk-secret-value" not in result.err
    assert not marker.exists()
    _nothing_issued(ready)


def test_a_reserved_name_in_the_config_is_refused(ready: Gp, home: Path) -> None:
    set_run_config(home, env='["OPENAI_API_KEY"]')
    result = ready("run", AGENT, "--", "true")
    assert result.code == 2, result
    assert "config.toml [run] env names OPENAI_API_KEY, which gatepass run sets itself" in result.err
    _nothing_issued(ready)


def test_sandbox_without_bwrap_gives_the_install_command_and_runs_nothing(ready: Gp, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    only_python = os.path.dirname(sys.executable)
    result = ready(
        "run", "--sandbox", AGENT, "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')", env={"PATH": only_python}
    )
    assert result.code == 1, result
    assert result.err.count("\n") == 1
    assert (
        "bwrap" in result.err and "apt-get install bubblewrap" in result.err and "dnf install bubblewrap" in result.err
    )
    assert not marker.exists()
    _nothing_issued(ready)


def test_help_says_what_the_child_gets_and_what_the_sandbox_hides(gp: Gp) -> None:
    result = gp("run", "--help")
    assert result.code == 0
    for text in ("GATEPASS_KEY", "ANTHROPIC_BASE_URL", "NO_PROXY", "grace_seconds", "128+N", "~/.ssh", "TTL"):
        assert text in result.out, text
