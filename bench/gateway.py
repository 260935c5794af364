"""Gateway benchmark: a fast fake upstream, direct and through gatepass with its whole pipeline on.

    python bench/gateway.py                      # 10 s runs, 64 connections, 10,000 agents, 100,000 keys
    python bench/gateway.py --duration 5 --write docs/benchmarks.md

Every process is separate: the fake upstream (``gatepass.testing.fast_upstream``), the gateway
(``gatepass serve``, uvloop) and the load generator (``wrk``, from Debian's package of that name).
Through gatepass every request is authenticated (HMAC of the key), authorized against grants,
checked by the loop breaker, rate-limited (rpm, tpm and concurrency set on the agent), priced,
reserved against budgets, forwarded with the injected credential, metered from the response's
usage, settled, and audited (hash-chained record, group-committed with fsync) before the
response is released. Bodies differ per request (so the loop breaker does not trip).

Reported: requests/s at --connections, median latency at one connection (direct vs gatepass),
time to first byte of a streamed response (median of 300, direct vs gatepass), and the gateway's
peak resident memory with --agents agents and --keys keys in its store.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from gatepass.control import agents, grants, keys, upstreams
from gatepass.control.app import Gatepass, init_home
from gatepass.control.credentials import add_secret
from gatepass.keyformat import generate_key, new_id
from gatepass.model import RateLimits, UpstreamType
from gatepass.sensitive import Secret
from gatepass.store import schema
from gatepass.units import parse_budget

MODEL = "claude-haiku-4-5-20251001"
LUA = """
counter = (os.time() %% 100000) * 100000  -- runs seconds apart start far apart: no body repeats across runs
request = function()
  counter = counter + 1
  local body = '{"model":"%s","max_tokens":16,"messages":[{"role":"user","content":"bench ' .. counter .. '"}]}'
  return wrk.format("POST", nil, {["content-type"] = "application/json", ["x-api-key"] = "%s"}, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_durability(config: Path, durability: str) -> None:
    """Set ``audit.durability`` in a home's config.toml."""
    text = config.read_text()
    config.write_text(re.sub(r'(?m)^durability = "\w+"$', f'durability = "{durability}"', text, count=1))


def build_description() -> str:
    """Which gatepass and which Python run the gateway (the same environment as this script)."""
    import platform

    import gatepass.dataplane.gateway as hot

    build = "compiled with mypyc (make compiled)" if not hot.__file__.endswith(".py") else "pure Python"
    return f"{build}; Python {platform.python_version()} from {sys.base_prefix}"


def serve_args(gw_port: int, admin_port: int) -> list[str]:
    """``python`` arguments that run ``gatepass serve`` on these loopback ports."""
    return ["-m", "gatepass", "serve", "--listen", f"127.0.0.1:{gw_port}", "--admin-listen", f"127.0.0.1:{admin_port}"]


def bench_home(
    prefix: str, durability: str, n_agents: int, n_keys: int, procs: list[subprocess.Popen[bytes]]
) -> tuple[Path, dict[str, str], int, str]:
    """A throw-away home (``GATEPASS_HOME`` set in this process too) with the fast fake upstream
    started (appended to ``procs``, for the caller to stop) and the store filled by :func:`populate`.
    Returns the folder, the environment, the upstream's port and the bench agent's key."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    env = {**os.environ, "GATEPASS_HOME": str(root / "home")}
    os.environ.update(env)
    up_port = free_port()
    procs.append(subprocess.Popen([sys.executable, "-m", "gatepass.testing.fast_upstream", "--port", str(up_port)]))
    init_home(env=env)
    set_durability(root / "home" / "config.toml", durability)
    with Gatepass.open(env=env, actor="bench") as app:
        t0 = time.perf_counter()
        key = populate(app, f"http://127.0.0.1:{up_port}", n_agents, n_keys)
        print(f"store: {n_agents} agents and {n_keys} keys written in {time.perf_counter() - t0:.1f} s")
    return root, env, up_port, key


def stop_all(procs: list[subprocess.Popen[bytes]], folder: Path | None) -> None:
    """Kill what is still running of ``procs`` and remove the throw-away ``folder``."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def key_row(agent_id: str, digest: str, now: int, key_id: str | None = None) -> dict[str, object]:
    """A row of the keys table: a key of ``agent_id`` valid for a day, with no limits of its own."""
    return {
        "id": key_id or new_id("key_"),
        "agent_id": agent_id,
        "digest": digest,
        "created_at": now,
        "expires_at": now + 86400,
        "max_uses": None,
        "uses_left": None,
        "cidrs": [],
        "upstreams": [],
        "last_used_at": None,
        "last_used_ip": None,
        "revoked_at": None,
        "revoked_reason": None,
    }


def populate(app: Gatepass, upstream_url: str, n_agents: int, n_keys: int) -> str:
    """The bench agent and its key, through the control API; the crowd by bulk inserts."""
    with app.session() as s:
        upstreams.add_upstream(s, "anthropic", UpstreamType.ANTHROPIC, base_url=upstream_url, secret_name="main")
        add_secret(s, "main", "anthropic", Secret("FAKE-bench-" + os.urandom(8).hex()))
        agents.create_agent(
            s,
            "bench-load-dev",
            owner="bench@example.com",
            budgets=[parse_budget("1000000/month")],
            limits=RateLimits(rpm=10_000_000, tpm=1_000_000_000, concurrency=100_000),
        )
        grants.add_grant(s, "bench-load-dev", "anthropic")
        key, _ = keys.issue_key(s, "bench-load-dev", ttl=timedelta(days=1))
    now = int(datetime.now(UTC).timestamp())
    agent_rows = [
        {
            "id": new_id("ag_"),
            "name": f"crowd{i}-bot-dev",
            "owner": "crowd@example.com",
            "email": f"crowd+{i}@example.com",
            "description": "",
            "status": "active",
            "status_reason": None,
            "mode": "enforce",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n_agents)
    ]
    digest = app.vault.key_digest
    key_rows = [key_row(str(agent_rows[i % n_agents]["id"]), digest(generate_key()), now) for i in range(n_keys)]
    engine = sa.create_engine(app.store_url)
    with engine.begin() as conn:
        if agent_rows:
            conn.execute(schema.agents.insert(), agent_rows)
        if key_rows:
            conn.execute(schema.keys.insert(), key_rows)
    engine.dispose()
    return key.reveal()


def wrk(url: str, script: Path, connections: int, duration: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    median = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out)
    assert median is not None, out
    factor = {"us": 1e-3, "ms": 1.0, "s": 1000.0}[median.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return {
        "rps": rps,
        "requests": float(done),
        "p50_ms": float(median.group(1)) * factor,
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of every thread of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK  # utime, stime (fields 14 and 15 of stat)


def wrk_cpu(pid: int, url: str, script: Path, connections: int, duration: int) -> dict[str, float]:
    """:func:`wrk`, plus the CPU time process ``pid`` spent per completed request (µs, user + system)."""
    before = sum(cpu_seconds(pid))
    result = wrk(url, script, connections, duration)
    result["cpu_us"] = (sum(cpu_seconds(pid)) - before) / max(result["requests"], 1.0) * 1e6
    return result


def ttfb(port: int, path: str, key: str, n: int = 300) -> float:
    """Median seconds from sending a streaming request to its response head, on one keep-alive connection."""
    times = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for i in range(n):
            body = json.dumps(
                {
                    "model": MODEL,
                    "max_tokens": 16,
                    "stream": True,
                    "messages": [{"role": "user", "content": f"stream {i}"}],
                }
            )
            start = time.perf_counter()
            conn.request("POST", path, body=body, headers={"content-type": "application/json", "x-api-key": key})
            response = conn.getresponse()
            times.append(time.perf_counter() - start)
            if response.status != 200:
                raise SystemExit(f"streaming request answered {response.status}: {response.read()[:200]!r}")
            response.read()
    finally:
        conn.close()
    return statistics.median(times)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            match = re.search(r"VmRSS:\s+(\d+)", status)
            if match:
                self.peak_kb = max(self.peak_kb, int(match.group(1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument(
        "--durability",
        choices=["fsync", "write"],
        default="write",
        help="audit.durability of the gateway (see config.toml; write is the default)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every measurement; report median and range")
    parser.add_argument("--write", type=Path, help="also write the results as markdown to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    gw_port, admin_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    home: Path | None = None
    try:
        home, env, up_port, key = bench_home("gatepass-bench-", args.durability, args.agents, args.keys, procs)
        gateway = subprocess.Popen(
            [sys.executable, *serve_args(gw_port, admin_port)], env=env, stderr=subprocess.DEVNULL
        )
        procs.append(gateway)
        wait_port(up_port)
        wait_port(gw_port, timeout=120)
        sampler = RssSampler(gateway.pid)
        sampler.start()
        script = home / "bench.lua"
        script.write_text(LUA % (MODEL, key))
        direct_url = f"http://127.0.0.1:{up_port}/v1/messages"
        gw_url = f"http://127.0.0.1:{gw_port}/anthropic/v1/messages"
        wrk(gw_url, script, 8, 2)  # warm-up
        # Each round measures direct and through gatepass back to back, so that a pair sees the
        # same machine: on a shared VM the speed drifts by ±25 % over minutes.
        rounds = []
        for _ in range(args.repeat):
            rounds.append(
                {
                    "direct": wrk(direct_url, script, args.connections, args.duration),
                    "gatepass": wrk_cpu(gateway.pid, gw_url, script, args.connections, args.duration),
                    "direct_c1": wrk(direct_url, script, 1, args.duration),
                    "gatepass_c1": wrk(gw_url, script, 1, args.duration),
                    "stream_direct": {"s": ttfb(up_port, "/v1/messages", key)},
                    "stream_gw": {"s": ttfb(gw_port, "/anthropic/v1/messages", key)},
                }
            )
        sampler.stop.set()
        hwm = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{gateway.pid}/status").read_text())
        peak_mb = max(sampler.peak_kb, int(hwm.group(1)) if hwm else 0) / 1024
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=120)
        verify = subprocess.run(
            [sys.executable, "-m", "gatepass", "audit", "verify"], env=env, capture_output=True, text=True
        )
    finally:
        stop_all(procs, home)

    def spread(values: list[float], fmt: str) -> str:
        """The value, or with several rounds their median and range."""
        if len(values) == 1:
            return fmt.format(values[0])
        middle = statistics.median(values)
        return f"{fmt.format(middle)} ({fmt.format(min(values))} to {fmt.format(max(values))})"

    def each(run: str, field: str, scale: float = 1.0) -> list[float]:
        return [r[run][field] * scale for r in rounds]

    added = [r["gatepass_c1"]["p50_ms"] - r["direct_c1"]["p50_ms"] for r in rounds]
    ttfb_added = [(r["stream_gw"]["s"] - r["stream_direct"]["s"]) * 1000 for r in rounds]
    non_2xx = sum(r["gatepass"]["non_2xx"] + r["gatepass_c1"]["non_2xx"] for r in rounds)
    rows = [
        ("gatepass build", build_description()),
        ("audit durability", args.durability),
        ("rounds (median, and range when more than one)", str(args.repeat)),
        ("requests/s, direct to the fake upstream", spread(each("direct", "rps"), "{:,.0f}")),
        (f"requests/s through gatepass ({args.connections} connections)", spread(each("gatepass", "rps"), "{:,.0f}")),
        (
            f"gateway CPU per request ({args.connections} connections, user + system)",
            spread(each("gatepass", "cpu_us"), "{:.0f} µs"),
        ),
        ("median latency at 1 connection, direct", spread(each("direct_c1", "p50_ms"), "{:.3f} ms")),
        ("median latency at 1 connection, through gatepass", spread(each("gatepass_c1", "p50_ms"), "{:.3f} ms")),
        ("latency added by gatepass (median, 1 connection)", spread(added, "{:.3f} ms")),
        ("time to first byte of a stream, direct (median)", spread(each("stream_direct", "s", 1000), "{:.3f} ms")),
        ("time to first byte of a stream, through gatepass", spread(each("stream_gw", "s", 1000), "{:.3f} ms")),
        ("time to first byte added by gatepass", spread(ttfb_added, "{:.3f} ms")),
        (f"gateway peak resident memory ({args.agents:,} agents, {args.keys:,} keys)", f"{peak_mb:.0f} MB"),
        ("non-2xx responses through gatepass", f"{non_2xx:.0f}"),
        ("audit verify after the run", verify.stdout.strip() or verify.stderr.strip()),
    ]
    table = "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    print(table)
    if args.write:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown CPU",
        )
        args.write.write_text(
            f"Measured {stamp} on {os.cpu_count()} cores ({cpu}), {args.duration} s per wrk run:\n\n{table}\n"
        )


if __name__ == "__main__":
    main()
