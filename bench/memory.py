"""The gateway's resident memory under sustained load: does it level off, and where?

    python bench/memory.py                       # 12 intervals of 10 s at 64 connections, 10,000 agents, 100,000 keys
    python bench/memory.py --intervals 30 --agents 100 --keys 100
    python bench/memory.py --busy-keys            # every key has a budget and a limit and takes its turn

``bench/gateway.py`` reports the peak over its own rounds, which are short: a structure that fills
up only after some 100,000 distinct requests, or memory that fragments as entries churn, shows
only under a longer load. This script runs the same set-up (fake upstream, ``gatepass serve``,
``wrk``, bodies that never repeat) and prints the gateway's resident memory after each interval,
with the peak so far. A gateway that keeps growing interval after interval holds something per
request; one that levels off holds what its bounds allow. By default the load comes from one
agent's key, as in ``bench/gateway.py``; with ``--busy-keys`` every crowd agent has a grant, two
budgets and three rate limits, every key a budget and a limit, and each request uses the next key,
so the gateway keeps state for all of them. Loopback only; every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from gateway import (
    LUA,
    MODEL,
    bench_home,
    build_description,
    free_port,
    key_row,
    serve_args,
    stop_all,
    wait_port,
    wrk,
)

from gatepass.control.app import Gatepass
from gatepass.keyformat import generate_key, new_id
from gatepass.store import schema

# Bodies never repeat (the counter starts from the clock); the keys go round in turn from ``first``,
# which each interval sets to where the one before stopped, so that every key takes its turn.
BUSY_LUA = """
keys = %s
first = %d
counter = (os.time() %% 100000) * 100000
sent = 0
request = function()
  counter = counter + 1
  local key = keys[((first + sent) %% #keys) + 1]
  sent = sent + 1
  local body = '{"model":"%s","max_tokens":16,"messages":[{"role":"user","content":"bench ' .. counter .. '"}]}'
  return wrk.format("POST", nil, {["content-type"] = "application/json", ["x-api-key"] = key}, body)
end
"""


def busy_crowd(env: dict[str, str], n_keys: int) -> list[str]:
    """Grants, budgets and limits for every crowd agent; ``n_keys`` keys with a budget and a limit each.

    Returns the keys (generated here, never stored in the clear)."""
    now = int(time.time())
    with Gatepass.open(env=env, actor="bench") as app:
        engine = sa.create_engine(app.store_url)
        digest = app.vault.key_digest
        plain = [generate_key() for _ in range(n_keys)]
        key_ids = [new_id("key_") for _ in range(n_keys)]
        with engine.begin() as conn:
            crowd = [
                r.id for r in conn.execute(sa.select(schema.agents.c.id).where(schema.agents.c.name.like("crowd%")))
            ]
            if not crowd:
                raise SystemExit("--busy-keys needs crowd agents: --agents 1 or more")
            conn.execute(
                schema.grants.insert(),
                [
                    {
                        "id": new_id("gr_"),
                        "agent_id": a,
                        "upstream": "anthropic",
                        "models": [],
                        "methods": [],
                        "paths": [],
                        "created_at": now,
                        "leaks": "block",
                    }
                    for a in crowd
                ],
            )
            conn.execute(
                schema.budgets.insert(),
                [
                    {"scope": "agent", "owner_id": a, "period": p, "amount_micros": 10**12}
                    for a in crowd
                    for p in ("day", "month")
                ],
            )
            conn.execute(
                schema.limits.insert(),
                [
                    {"scope": "agent", "owner_id": a, "kind": k, "value": v}
                    for a in crowd
                    for k, v in (("rpm", 10**7), ("tpm", 10**9), ("concurrency", 10**5))
                ],
            )
            conn.execute(
                schema.keys.insert(),
                [
                    key_row(crowd[i % len(crowd)], digest(key), now, key_id)
                    for i, (key_id, key) in enumerate(zip(key_ids, plain, strict=True))
                ],
            )
            conn.execute(
                schema.budgets.insert(),
                [{"scope": "key", "owner_id": k, "period": "day", "amount_micros": 10**12} for k in key_ids],
            )
            conn.execute(
                schema.limits.insert(),
                [{"scope": "key", "owner_id": k, "kind": "rpm", "value": 10**7} for k in key_ids],
            )
        engine.dispose()
    return [key.reveal() for key in plain]


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
    parser.add_argument("--busy-keys", action="store_true", help="load from all the keys in turn (see above)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    procs: list[subprocess.Popen[bytes]] = []
    home: Path | None = None
    try:
        home, env, _, key = bench_home(
            "gatepass-memory-", "write", args.agents, 0 if args.busy_keys else args.keys, procs
        )
        busy = busy_crowd(env, args.keys) if args.busy_keys else []
        gw_port, admin_port = free_port(), free_port()
        gateway = subprocess.Popen(
            [sys.executable, *serve_args(gw_port, admin_port)], env=env, stderr=subprocess.DEVNULL
        )
        procs.append(gateway)
        wait_port(gw_port, timeout=120)
        script = home / "bench.lua"
        keys_lua = "{" + ",".join(f'"{key}"' for key in busy) + "}"
        if not busy:
            script.write_text(LUA % (MODEL, key))
        url = f"http://127.0.0.1:{gw_port}/anthropic/v1/messages"
        load = "every key in turn, each with a budget and a limit" if busy else "one key"
        print(f"gatepass build: {build_description()}; {args.agents:,} agents, {args.keys:,} keys; load from {load}")
        rss, _ = memory_kb(gateway.pid)
        print("| after | requests | requests/s | non-2xx | resident | peak so far |\n|---|---|---|---|---|---|")
        print(f"| start-up | 0 | | | {rss / 1024:.0f} MB | |")
        served = 0
        for interval in range(1, args.intervals + 1):
            if busy:
                script.write_text(BUSY_LUA % (keys_lua, served % len(busy), MODEL))
            result = wrk(url, script, args.connections, args.seconds)
            served += int(result["requests"])
            rss, hwm = memory_kb(gateway.pid)
            print(
                f"| {interval * args.seconds} s | {served:,} | {result['rps']:,.0f} | {result['non_2xx']:,.0f} "
                f"| {rss / 1024:.0f} MB "
                f"| {hwm / 1024:.0f} MB |",
                flush=True,
            )
    finally:
        stop_all(procs, home)


if __name__ == "__main__":
    main()
