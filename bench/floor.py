"""The floor under the gateway benchmark: the same load through a proxy that does nothing else.

    python bench/floor.py                        # 3 rounds of 5 s: direct, floor proxy, gatepass
    python bench/floor.py --rounds 1 --duration 3

The floor proxy (``python bench/floor.py --serve PORT UPSTREAM_PORT SECONDS``, started by this
script in its own process) is what any Python proxy on uvloop and httptools pays before doing
anything useful: it parses each request, forwards it on a kept-alive upstream connection with a
fixed credential header, parses the response and sends it back. No authentication, policy, rate
limits, budgets, metering, leak scan or audit. Run next to ``gatepass serve`` on the same fake
upstream with the same ``wrk`` load, it tells what share of the gateway's CPU per request is its
own work and what share is plumbing that one Python process cannot avoid, on the machine at hand.
Each round measures direct, floor and gatepass back to back (the machine's speed drifts).
Loopback only; every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httptools
import uvloop
from gateway import LUA, MODEL, bench_home, build_description, free_port, serve_args, stop_all, wait_port, wrk_cpu


class _Http:
    """An asyncio protocol that feeds what it receives to an httptools parser, collecting bodies."""

    parser: httptools.HttpRequestParser | httptools.HttpResponseParser

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass asyncio's

    def eof_received(self) -> None:
        return None

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)


class _Upstream(_Http):
    """One kept-alive connection to the fake upstream; one request at a time."""

    def __init__(self, pool: list[_Upstream]) -> None:
        super().__init__()
        self.pool = pool
        self.parser: httptools.HttpResponseParser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("upstream closed"))

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))


class _Client(_Http):
    """A client connection of the floor proxy."""

    def __init__(self, upstream_port: int, pool: list[_Upstream]) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.pool = pool
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_message_complete(self) -> None:
        task = asyncio.get_running_loop().create_task(self.forward(self.url, b"".join(self.body)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def forward(self, url: bytes, body: bytes) -> None:
        loop = asyncio.get_running_loop()
        if self.pool:
            up = self.pool.pop()
        else:
            _, up = await loop.create_connection(  # type: ignore[type-var]  # a protocol by its methods
                lambda: _Upstream(self.pool), "127.0.0.1", self.upstream_port
            )
        assert up.transport is not None
        up.waiter = loop.create_future()
        path = url.removeprefix(b"/anthropic")
        up.transport.write(
            b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"x-api-key: floor-credential\r\ncontent-length: %d\r\n\r\n%s" % (path, len(body), body)
        )
        status, answer = await up.waiter
        self.pool.append(up)
        if self.transport is not None:
            self.transport.write(
                b"HTTP/1.1 %d OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (status, len(answer), answer)
            )


async def _serve(port: int, upstream_port: int, seconds: float) -> None:
    pool: list[_Upstream] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Client(upstream_port, pool), "127.0.0.1", port)  # type: ignore[arg-type,return-value]
    await asyncio.sleep(seconds)  # bounded: stops by itself if the driving script is gone
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", nargs=3, type=float, metavar=("PORT", "UPSTREAM_PORT", "SECONDS"))
    args = parser.parse_args()
    if args.serve:
        port, upstream_port, seconds = args.serve
        uvloop.run(_serve(int(port), int(upstream_port), seconds))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    procs: list[subprocess.Popen[bytes]] = []
    home: Path | None = None
    try:
        home, env, up_port, key = bench_home("gatepass-floor-", "write", 10, 10, procs)
        floor_port, gw_port, admin_port = free_port(), free_port(), free_port()
        lifetime = 60 + args.rounds * 3 * (args.duration + 2)
        floor = subprocess.Popen([sys.executable, __file__, "--serve", str(floor_port), str(up_port), str(lifetime)])
        gateway = subprocess.Popen(
            [sys.executable, *serve_args(gw_port, admin_port)], env=env, stderr=subprocess.DEVNULL
        )
        procs += [floor, gateway]
        for port in (up_port, floor_port, gw_port):
            wait_port(port, timeout=120)
        script = home / "bench.lua"
        script.write_text(LUA % (MODEL, key))
        direct_url = f"http://127.0.0.1:{up_port}/v1/messages"
        floor_url = f"http://127.0.0.1:{floor_port}/anthropic/v1/messages"
        gw_url = f"http://127.0.0.1:{gw_port}/anthropic/v1/messages"
        for url, pid in ((floor_url, floor.pid), (gw_url, gateway.pid)):
            wrk_cpu(pid, url, script, 8, 2)  # warm-up
        rows: dict[str, list[dict[str, float]]] = {"direct": [], "floor": [], "gatepass": []}
        for _ in range(args.rounds):
            rows["direct"].append(wrk_cpu(procs[0].pid, direct_url, script, args.connections, args.duration))
            rows["floor"].append(wrk_cpu(floor.pid, floor_url, script, args.connections, args.duration))
            rows["gatepass"].append(wrk_cpu(gateway.pid, gw_url, script, args.connections, args.duration))
            time.sleep(0.5)
    finally:
        stop_all(procs, home)

    def median(name: str, field: str) -> float:
        return statistics.median(r[field] for r in rows[name])

    print(f"gatepass build: {build_description()}; {args.rounds} rounds of {args.duration} s, median")
    print(f"| {args.connections} connections | requests/s | CPU per request of the serving process |")
    print("|---|---|---|")
    labels = {"direct": "direct to the fake upstream", "floor": "floor proxy (no pipeline)", "gatepass": "gatepass"}
    for name, label in labels.items():
        print(f"| {label} | {median(name, 'rps'):,.0f} | {median(name, 'cpu_us'):.0f} µs |")


if __name__ == "__main__":
    main()
