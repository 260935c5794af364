"""Egress proxy benchmark: connection set-up through the proxy vs direct, to a loopback echo server.

    python bench/egress.py                          # 500 runs of each, audit durability write (the default)
    python bench/egress.py --runs 1000 --durability fsync --write docs/egress-bench.md

Every process is separate: the echo server, the gateway (``gatepass serve``, uvloop) and this client.
The home opens loopback on purpose (``[egress] allow_networks = ["127.0.0.1/32"]``) and allows the
agent the echo server's port. One run is: open a TCP connection, (through the proxy: send CONNECT
with the agent's key and read ``200 Connection established``), send one byte and read its echo.
Direct and proxied runs alternate. Through the proxy each run is authenticated (HMAC of the key),
checked against the allowlist and the address guard, connected, and audited (a hash-chained record
made durable before the 200, and a closing record when the tunnel ends).

Reported: the median and 90th percentile of the set-up time, direct and through the proxy, and
what the proxy adds (target: at most 1 ms at the median).
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway import free_port, serve_args, set_durability, stop_all, wait_port  # bench/gateway.py, beside this script

from gatepass.control import agents, egress, keys
from gatepass.control.app import Gatepass, init_home

ECHO = """
import asyncio, sys, uvloop

class Echo(asyncio.Protocol):
    def connection_made(self, transport): self.transport = transport
    def data_received(self, data): self.transport.write(data)

async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()

uvloop.run(main())
"""
TIMEOUT = 5.0  # bound of every wait of one run


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit(f"the proxy closed the connection: {data[:200]!r}")
        data += chunk
    return data


def one_run(port: int, connect: bytes | None) -> float:
    """Seconds from opening the connection to the echo of its first byte."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if connect is not None:
            sock.sendall(connect)
            head = read_head(sock)
            if not head.startswith(b"HTTP/1.1 200 "):
                status = head.partition(b"\r\n")[0]
                raise SystemExit(f"CONNECT was answered {status!r}")
        sock.sendall(b"x")
        if sock.recv(1) != b"x":
            raise SystemExit("the echo server did not echo")
        return time.perf_counter() - start


def setup(home: Path, echo_port: int, durability: str) -> str:
    """A home whose agent may reach the echo server through the proxy; returns its key."""
    env = {**os.environ, "GATEPASS_HOME": str(home)}
    init_home(env=env)
    config = home / "config.toml"
    set_durability(config, durability)
    config.write_text(config.read_text().replace("allow_networks = []", 'allow_networks = ["127.0.0.1/32"]'))
    with Gatepass.open(env=env, actor="bench") as app, app.session() as s:
        agents.create_agent(s, "bench-egress-dev", owner="bench@example.com")
        egress.allow_egress(s, "bench-egress-dev", [f"127.0.0.1:{echo_port}"])
        key, _ = keys.issue_key(s, "bench-egress-dev", ttl=timedelta(days=1))
    return key.reveal()


def filesystem(path: Path) -> str:
    out = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500, help="runs of each kind (direct, through the proxy)")
    parser.add_argument("--durability", choices=["fsync", "write"], default="write", help="audit.durability")
    parser.add_argument("--write", type=Path, help="also write the results as markdown to this file")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gatepass-bench-egress-"))
    home = root / "home"
    echo_port, gw_port, admin_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([sys.executable, "-c", ECHO, str(echo_port)]))
        key = setup(home, echo_port, args.durability)
        gateway = subprocess.Popen(
            [sys.executable, *serve_args(gw_port, admin_port)],
            env={**os.environ, "GATEPASS_HOME": str(home)},
            stderr=subprocess.DEVNULL,
        )
        procs.append(gateway)
        wait_port(echo_port)
        wait_port(gw_port)
        auth = base64.b64encode(f"bench-egress-dev:{key}".encode()).decode()
        target = f"127.0.0.1:{echo_port}"
        connect = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {auth}\r\n\r\n".encode()
        for _ in range(50):  # warm-up
            one_run(echo_port, None)
            one_run(gw_port, connect)
        direct, proxied = [], []
        started = time.monotonic()
        for _ in range(args.runs):
            direct.append(one_run(echo_port, None))
            proxied.append(one_run(gw_port, connect))
        elapsed = time.monotonic() - started
        gateway.terminate()
        gateway.wait(timeout=60)
        verify = subprocess.run(
            [sys.executable, "-m", "gatepass", "audit", "verify"],
            env={**os.environ, "GATEPASS_HOME": str(home)},
            capture_output=True,
            text=True,
        )
        fs = filesystem(home)
    finally:
        stop_all(procs, root)

    def ms(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1] * 1000 if q != 50 else statistics.median(values) * 1000

    added = ms(proxied, 50) - ms(direct, 50)
    rows = [
        ("audit durability (home on " + fs + ")", args.durability),
        ("runs of each kind", f"{args.runs:,} ({elapsed:.1f} s)"),
        ("set-up, direct: median / p90", f"{ms(direct, 50):.3f} ms / {ms(direct, 90):.3f} ms"),
        ("set-up through the proxy: median / p90", f"{ms(proxied, 50):.3f} ms / {ms(proxied, 90):.3f} ms"),
        ("added by the proxy (median)", f"{added:.3f} ms ({'within' if added <= 1.0 else 'over'} the 1 ms target)"),
        ("audit verify after the run", verify.stdout.strip() or verify.stderr.strip()),
    ]
    table = "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    print(table)
    if args.write:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        args.write.write_text(
            f"Egress proxy, connection set-up (CONNECT + 200 + first byte echoed), measured {stamp} "
            f"on {os.cpu_count()} cores:\n\n{table}\n"
        )


if __name__ == "__main__":
    main()
