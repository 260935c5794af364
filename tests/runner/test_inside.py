"""The sandbox's first process, run here outside a sandbox: relay, command, signals and exit status."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

RELAYED = """
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
c.sendall(b"ping")
assert c.recv(4) == b"ping"
sys.exit(5)
"""
TRAPS_TERM = """
import signal, sys, time
from pathlib import Path
signal.signal(signal.SIGTERM, lambda *a: sys.exit(9))
Path(sys.argv[1]).write_text("ready")
time.sleep(60)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def gateway_socket(tmp_path: Path) -> AsyncIterator[str]:
    """A Unix socket that echoes, standing for the host side of the relay."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    path = str(tmp_path / "gateway.sock")
    server = await asyncio.start_unix_server(echo, path=path)
    yield path
    server.close()


async def _inside(socket_path: str, port: int, *command: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-m",
        "gatepass.runner.inside",
        "--socket",
        socket_path,
        "--listen",
        f"127.0.0.1:{port}",
        "--",
        *command,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_the_command_reaches_the_socket_through_loopback_and_its_status_is_passed_on(
    gateway_socket: str,
) -> None:
    port = _free_port()
    process = await _inside(gateway_socket, port, sys.executable, "-c", RELAYED, str(port))
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 5, err


async def test_death_by_signal_becomes_128_plus_n(gateway_socket: str) -> None:
    process = await _inside(
        gateway_socket, _free_port(), sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    )
    await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 128 + signal.SIGKILL


async def test_signals_are_passed_to_the_command(gateway_socket: str, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = await _inside(gateway_socket, _free_port(), sys.executable, "-c", TRAPS_TERM, str(ready))
    for _ in range(600):
        if ready.exists():
            break
        await asyncio.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 9


async def test_a_missing_command_is_127_with_one_line(gateway_socket: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    process = await _inside(gateway_socket, _free_port(), missing)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 127
    assert err.decode() == f"gatepass: error: command not found: {missing}: check its name, or give its path\n"


async def test_a_taken_port_is_an_error_and_runs_nothing(gateway_socket: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await _inside(gateway_socket, port, sys.executable, "-c", f"open({str(marker)!r}, 'w')")
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err.decode()
    assert not marker.exists()
