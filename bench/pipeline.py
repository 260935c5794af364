"""The gateway's pipeline alone, in-process: CPU per request without the HTTP server, optionally profiled.

    python bench/pipeline.py                       # 5,000 requests, 16 at a time
    python bench/pipeline.py --profile 30          # and print cProfile's 30 costliest functions

``gatepass serve``'s service is started in this process on a throw-away home (--agents agents,
--keys keys), in front of the fast fake upstream (its own process, loopback); requests are handed
to ``Gateway.handle`` directly, with a response writer whose socket discards what it is given.
So the figure is the pipeline (admission, forwarding through the upstream client, metering,
settlement, audit) without the server side of HTTP. It is CPU time of this process (the upstream
is not in it) divided by the requests, so it depends little on what else the machine runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway import MODEL, bench_home, stop_all, wait_port

from gatepass.control.app import Gatepass
from gatepass.control.serve import GatewayService
from gatepass.dataplane.http.messages import IncomingRequest
from gatepass.dataplane.http.server import new_event_loop
from gatepass.dataplane.http.writer import ResponseWriter


class NullSink:
    """A client connection that takes every byte and never goes away."""

    writing_paused = False
    lost = False

    def __init__(self) -> None:
        self.responses = 0

    def emit(self, data: bytes | bytearray) -> None:
        pass

    async def drain(self) -> None:
        pass

    async def wait_lost(self) -> None:
        await asyncio.Future()

    def keep_alive_allowed(self) -> bool:
        return True

    def response_done(self, keep_alive: bool) -> None:
        self.responses += 1

    def start_tunnel(self, *args: object) -> object:
        raise NotImplementedError


def request(key: str, n: int) -> IncomingRequest:
    body = (f'{{"model":"{MODEL}","max_tokens":16,"messages":[{{"role":"user","content":"bench {n}"}}]}}').encode()
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"x-api-key", key.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    return IncomingRequest(
        method="POST",
        target=b"/anthropic/v1/messages",
        path="/anthropic/v1/messages",
        query=b"",
        headers=headers,
        body=body,
        client_ip="127.0.0.1",
        client_port=40000,
        http_version="1.1",
        keep_alive=True,
    )


async def drive(service: GatewayService, key: str, total: int, concurrency: int, start: int) -> None:
    gateway = service.gateway
    sink = NullSink()

    async def one(n: int) -> None:
        writer = ResponseWriter(sink, False, False, True)  # type: ignore[arg-type]
        await gateway.handle(request(key, n), writer)
        if writer.status != 200:  # type: ignore[attr-defined]
            raise SystemExit(f"request {n} answered {writer.status}")  # type: ignore[attr-defined]

    async def worker(first: int) -> None:
        for n in range(first, start + total, concurrency):
            await one(n)

    await asyncio.gather(*(worker(start + i) for i in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--durability", choices=["fsync", "write"], default="write")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, metavar="N", help="profile one more run; print the N costliest")
    args = parser.parse_args()

    procs: list[subprocess.Popen[bytes]] = []
    home: Path | None = None
    loop = new_event_loop()
    try:
        home, env, up_port, key = bench_home("gatepass-pipeline-", args.durability, args.agents, args.keys, procs)
        wait_port(up_port)
        app = Gatepass.open(env=env, actor="bench")
        service = GatewayService(app, listen="127.0.0.1:0", admin_listen="127.0.0.1:0")
        loop.run_until_complete(service.start())
        try:
            patch_status()
            loop.run_until_complete(drive(service, key, 500, args.concurrency, 0))  # warm-up
            print(f"pipeline CPU per request ({args.durability}, concurrency {args.concurrency}):")
            start = 500
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                loop.run_until_complete(drive(service, key, args.requests, args.concurrency, start))
                cpu, wall = time.process_time() - c0, time.perf_counter() - t0
                start += args.requests
                print(f"  {cpu / args.requests * 1e6:7.1f} us CPU, {args.requests / wall:7.0f} requests/s", flush=True)
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                loop.run_until_complete(drive(service, key, args.requests, args.concurrency, start))
                profiler.disable()
                stats = pstats.Stats(profiler)
                stats.sort_stats("tottime").print_stats(args.profile)
                stats.sort_stats("cumulative").print_stats(args.profile)
        finally:
            loop.run_until_complete(service.stop())
            app.close()
    finally:
        loop.close()
        stop_all(procs, home)


def patch_status() -> None:
    """Remember each response's status on its writer (the bench checks every request was served)."""
    real_send = ResponseWriter.send

    def send(self: ResponseWriter, status: int, *args: object, **kwargs: object) -> None:
        self.status = status  # type: ignore[attr-defined]
        real_send(self, status, *args, **kwargs)  # type: ignore[arg-type]

    ResponseWriter.send = send  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
