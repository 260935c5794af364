"""Child supervision: signals passed on, the grace period, exit statuses, and a non-dumpable gatepass."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gatepass.runner.supervise import (
    Signals,
    exit_status,
    launch_failure,
    start_process,
    supervise,
)

CHILD = """
import signal, sys, time
from pathlib import Path
if "trap" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGUSR1, lambda *a: sys.exit(7))
Path(sys.argv[1]).write_text("ready")
time.sleep(60)
"""


def _env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"]}


async def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, "the child never got ready"
        await asyncio.sleep(0.02)


async def _child(tmp_path: Path, signals: Signals, *args: str, send: int | None = None) -> int:
    """Start the child, send ``send`` to ourselves once it is ready (gatepass run being signalled)."""
    ready = tmp_path / "ready"
    process = await start_process([sys.executable, "-c", CHILD, str(ready), *args], env=_env(), cwd=str(tmp_path))
    waiting = asyncio.ensure_future(supervise(process, signals))
    await _wait_for(ready)
    if send is not None:
        os.kill(os.getpid(), send)
    return await asyncio.wait_for(waiting, 60)


def test_a_signal_to_gatepass_is_passed_to_the_child(tmp_path: Path) -> None:
    async def main(signals: Signals) -> int:
        with signals.on_loop(asyncio.get_running_loop()):
            return await _child(tmp_path, signals, send=signal.SIGUSR1)

    with Signals(grace=30) as signals:
        assert asyncio.run(main(signals)) == 7
    assert signals.stop_signal is None and not signals.killed


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    async def main(signals: Signals) -> int:
        with signals.on_loop(asyncio.get_running_loop()):
            return await _child(tmp_path, signals, "trap", send=signal.SIGTERM)

    started = time.monotonic()
    with Signals(grace=0.5) as signals:
        assert asyncio.run(main(signals)) == 128 + signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 30
    assert signals.killed and signals.stop_signal == signal.SIGTERM


def test_a_child_that_stops_in_time_is_not_killed(tmp_path: Path) -> None:
    async def main(signals: Signals) -> int:
        with signals.on_loop(asyncio.get_running_loop()):
            status = await _child(tmp_path, signals, send=signal.SIGTERM)
            await asyncio.sleep(0.3)  # past the grace period: the timer was cancelled with the child
            return status

    with Signals(grace=0.2) as signals:
        assert asyncio.run(main(signals)) == 128 + signal.SIGTERM
    assert not signals.killed


def test_a_stop_signal_before_the_child_starts_is_remembered_and_passed_on_when_it_does(tmp_path: Path) -> None:
    async def main(signals: Signals) -> int:
        with signals.on_loop(asyncio.get_running_loop()):
            os.kill(os.getpid(), signal.SIGINT)  # on the loop, nothing attached yet
            await asyncio.sleep(0.1)
            command = [sys.executable, "-c", CHILD, str(tmp_path / "ready")]
            process = await start_process(command, env=_env(), cwd=str(tmp_path))
            return await asyncio.wait_for(supervise(process, signals), 60)  # SIGINT at once, before it is ready

    with Signals(grace=30) as signals:
        os.kill(os.getpid(), signal.SIGHUP)  # outside the loop: remembered, nothing else
        assert signals.stop_signal == signal.SIGHUP
        assert asyncio.run(main(signals)) == 128 + signal.SIGINT


def test_the_handlers_are_restored_afterwards() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    with Signals(grace=1):
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert {sig: signal.getsignal(sig) for sig in before} == before


@pytest.mark.parametrize(("returncode", "status"), [(0, 0), (3, 3), (-9, 137), (-15, 143), (-2, 130)])
def test_exit_status_is_what_a_shell_reports(returncode: int, status: int) -> None:
    assert exit_status(returncode) == status


def test_launch_failures_are_126_or_127_with_one_line() -> None:
    assert launch_failure(FileNotFoundError(2, "No such file"), "agentx") == (
        127,
        "command not found: agentx: check its name, or give its path",
    )
    code, message = launch_failure(PermissionError(13, "Permission denied"), "./agent.py")
    assert code == 126 and "Permission denied" in message and "\n" not in message


def test_gatepass_run_is_not_dumpable() -> None:
    script = (
        "import ctypes; from gatepass.runner.supervise import protect_process; libc = ctypes.CDLL(None); "
        "print(libc.prctl(3, 0, 0, 0, 0)); protect_process(); print(libc.prctl(3, 0, 0, 0, 0))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["1", "0"]  # PR_GET_DUMPABLE before and after
