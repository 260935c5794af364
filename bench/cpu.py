"""CPU time of the gateway process per request: a load-independent measure for a shared machine.

    python bench/cpu.py                          # 5 s at 64 connections, then 5 s at 1 connection
    python bench/cpu.py --seconds 3 --connections 64 --agents 10 --keys 10
    python bench/cpu.py --profile /tmp/gw.txt    # also sample the gateway with py-spy (if installed)

Same set-up as ``bench/gateway.py`` (a throw-away home with --agents agents and --keys keys, the fast
fake upstream and ``gatepass serve`` in their own processes, ``wrk`` as the load generator, loopback
only). For each connection count it reads the gateway's user and system CPU time (all its threads,
from ``/proc/PID/stat``) before and after a bounded ``wrk`` run and divides by the requests wrk
completed. Wall-clock requests/s and latency depend on what else the machine runs; CPU per request
barely does, so compare changes by it. ``--profile`` writes py-spy's collapsed stacks of the gateway
during an extra run at the first connection count, with a summary of the hottest functions.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway import LUA, MODEL, bench_home, build_description, cpu_seconds, free_port, serve_args, stop_all, wait_port


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> tuple[int, float, float]:
    """Requests completed, requests/s, median latency in ms."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    done = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    median = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if done is None or rps is None or median is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    if bad:
        raise SystemExit(f"{bad.group(1)} requests through gatepass were refused:\n{out}")
    factor = {"us": 1e-3, "ms": 1.0, "s": 1000.0}[median.group(2)]
    return int(done.group(1)), float(rps.group(1)), float(median.group(1)) * factor


def instructions(pid: int, folder: Path) -> int:
    """Instructions the process ran since callgrind's counters were last zeroed (dumps a profile)."""
    before = set(folder.iterdir())
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    for _ in range(600):
        new = [p for p in set(folder.iterdir()) - before if p.name.startswith(f"callgrind.out.{pid}")]
        if new:
            time.sleep(0.5)  # let it finish writing
            text = new[0].read_text(errors="replace")
            found = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
            if found:
                return int(found.group(1))
        time.sleep(0.1)
    raise SystemExit("callgrind wrote no profile")


def summarize(collapsed: Path, top: int = 25) -> str:
    """Hottest functions of py-spy's collapsed stacks: own samples and inclusive samples."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples", "own %  incl %  function"]
    for frame, n in own.most_common(top):
        lines.append(f"{100 * n / total:5.1f}  {100 * inclusive[frame] / total:6.1f}  {frame}")
    lines.append("-- inclusive --")
    for frame, n in inclusive.most_common(top):
        lines.append(f"{100 * own[frame] / total:5.1f}  {100 * n / total:6.1f}  {frame}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", default="64,1", help="comma-separated connection counts")
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--durability", choices=["fsync", "write"], default="write")
    parser.add_argument("--repeat", type=int, default=1, help="runs per connection count")
    parser.add_argument("--profile", type=Path, help="write py-spy collapsed stacks here (needs py-spy)")
    parser.add_argument(
        "--callgrind",
        type=Path,
        help="run the gateway under valgrind's callgrind and report instructions per request (independent of "
        "the machine's load; system calls not included); its profile goes to this folder",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    connections = [int(c) for c in args.connections.split(",")]

    gw_port, admin_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    home: Path | None = None
    try:
        home, env, up_port, key = bench_home("gatepass-cpu-", args.durability, args.agents, args.keys, procs)
        serve = serve_args(gw_port, admin_port)
        if args.callgrind:
            args.callgrind.mkdir(parents=True, exist_ok=True)
            out = args.callgrind / "callgrind.out.%p"
            serve = ["--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, *serve]
        log = (home / "gateway.log").open("wb")
        gateway = subprocess.Popen(
            ["valgrind" if args.callgrind else sys.executable, *serve],
            env=env,
            stderr=log,
        )
        procs.append(gateway)
        wait_port(up_port)
        deadline = time.monotonic() + (600 if args.callgrind else 120)
        while gateway.poll() is None and time.monotonic() < deadline:
            try:
                wait_port(gw_port, timeout=1)
                break
            except SystemExit:
                continue
        else:
            print((home / "gateway.log").read_text()[-3000:], file=sys.stderr)
            raise SystemExit("the gateway did not start")
        script = home / "bench.lua"
        script.write_text(LUA % (MODEL, key))
        url = f"http://127.0.0.1:{gw_port}/anthropic/v1/messages"
        cg = args.callgrind is not None
        run_wrk(url, script, 8, 10 if cg else 2)  # warm-up
        print(f"gateway CPU per request (durability={args.durability}, {args.agents} agents, {args.keys} keys)")
        print(f"gatepass build: {build_description()}")
        print(
            "connections  requests  CPU us/request (user+sys)  requests/s  median ms" + ("  instructions/request" * cg)
        )
        for conns in connections:
            for _ in range(args.repeat):
                if cg:
                    subprocess.run(["callgrind_control", "--zero", str(gateway.pid)], check=True, capture_output=True)
                before = cpu_seconds(gateway.pid)
                done, rps, median = run_wrk(url, script, conns, args.seconds)
                after = cpu_seconds(gateway.pid)
                user, system = ((b - a) / done * 1e6 for a, b in zip(before, after, strict=True))
                cpu = f"{user + system:6.1f} ({user:5.1f}+{system:5.1f})"
                line = f"{conns:11d}  {done:8d}  {cpu:>25}  {rps:10.0f}  {median:9.3f}"
                if cg:
                    line += f"  {instructions(gateway.pid, args.callgrind) / done:20,.0f}"
                print(line, flush=True)
        if args.profile:
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            record = ["record", "-p", str(gateway.pid), "-r", "500", "-d", str(args.seconds + 1), "--gil"]
            sampler = subprocess.Popen(
                [spy, *record, "--format", "raw", "-o", str(args.profile), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            run_wrk(url, script, connections[0], args.seconds)
            sampler.wait(timeout=60)
            print(summarize(args.profile))
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=120)
    finally:
        stop_all(procs, home)


if __name__ == "__main__":
    main()
