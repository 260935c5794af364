"""The gateway's resident memory under sustained load: does it level off, and where?

    python bench/memory.py                       # 12 intervals of 10 s at 64 connections, 10,000 agents, 100,000 keys
    python bench/memory.py --intervals 30 --agents 100 --keys 100

``bench/gateway.py`` reports the peak over its own rounds, which are short: a structure that fills
up only after some 100,000 distinct requests, or memory that fragments as entries churn, shows
only under a longer load. This script runs the same set-up (fake upstream, ``gatepass serve``,
``wrk``, bodies that never repeat) and prints the gateway's resident memory after each interval,
with the peak so far. A gateway that keeps growing interval after interval holds something per
request; one that levels off holds what its bounds allow. Loopback only; every process is
stopped at the end.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway import LUA, MODEL, bench_home, build_description, free_port, serve_args, stop_all, wait_port, wrk


def memory_kb(pid: int) -> tuple[int, int]:
    """Resident and peak resident memory of ``pid``, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = [re.search(rf"{name}:\s+(\d+)", status) for name in ("VmRSS", "VmHWM")]
    rss, hwm = (int(m.group(1)) if m else 0 for m in found)
    return rss, hwm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intervals", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=10, help="length of one interval of load")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=100_000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    procs: list[subprocess.Popen[bytes]] = []
    home: Path | None = None
    try:
        home, env, _, key = bench_home("gatepass-memory-", "write", args.agents, args.keys, procs)
        gw_port, admin_port = free_port(), free_port()
        gateway = subprocess.Popen(
            [sys.executable, *serve_args(gw_port, admin_port)], env=env, stderr=subprocess.DEVNULL
        )
        procs.append(gateway)
        wait_port(gw_port, timeout=120)
        script = home / "bench.lua"
        script.write_text(LUA % (MODEL, key))
        url = f"http://127.0.0.1:{gw_port}/anthropic/v1/messages"
        print(f"gatepass build: {build_description()}; {args.agents:,} agents, {args.keys:,} keys")
        rss, _ = memory_kb(gateway.pid)
        print("| after | requests | requests/s | resident | peak so far |\n|---|---|---|---|---|")
        print(f"| start-up | 0 | | {rss / 1024:.0f} MB | |")
        served = 0
        for interval in range(1, args.intervals + 1):
            result = wrk(url, script, args.connections, args.seconds)
            served += int(result["requests"])
            rss, hwm = memory_kb(gateway.pid)
            print(
                f"| {interval * args.seconds} s | {served:,} | {result['rps']:,.0f} | {rss / 1024:.0f} MB "
                f"| {hwm / 1024:.0f} MB |",
                flush=True,
            )
    finally:
        stop_all(procs, home)


if __name__ == "__main__":
    main()
