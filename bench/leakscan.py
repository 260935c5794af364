"""Leak scanner benchmark: build time and scan speed with many secrets, on bodies with no findings.

    python bench/leakscan.py                       # 1,000 secrets
    python bench/leakscan.py --secrets 1000 --write /tmp/leakscan.md
    python bench/leakscan.py --compare             # also time single-automaton alternatives

Secrets are random API-key-shaped values (24 to 96 characters, a few prefixes), each looked for in
its raw form and every encoding the scanner knows (base64 and base64url at three alignments, URL,
hex, JSON), plus every credential format. Bodies are JSON as an agent sends them: a 10 KB and a
1 MB chat prompt of English-like text with some code and URLs in it, and a 1 MB prompt that is
mostly a base64 image. No body holds a finding, which is the common case the gateway pays for.
Every figure is the median of a bounded number of runs (wall clock and process CPU time: the
machine may be shared, and CPU time barely depends on what else runs).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gatepass.leakguard import LeakScanner
from gatepass.leakguard.variants import encoded_forms

WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by word "
    "but not what all were we when your can said there use an each which she do how their if will up other about "
    "out many then them these so some her would make like him into time has look two more write go see number no "
    "way could people my than first water been call who oil its now find long down day did get come made may part "
    "function return value request response error config server client deploy redis postgres token model prompt "
    "def class import self none true false null async await const let var if else for while try except raise"
).split()
PREFIXES = ("sk-ant-api03-", "sk-proj-", "ghp_", "xoxb-", "AKIA", "", "", "")


def fake_secrets(n: int, rng: random.Random) -> list[tuple[str, bytes]]:
    return [
        (f"secret-{i}", (rng.choice(PREFIXES) + secrets.token_urlsafe(rng.randint(18, 72))).encode()) for i in range(n)
    ]


def prose(size: int, rng: random.Random) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        roll = rng.random()
        if roll < 0.01:
            part = f"https://docs.example.com/{rng.choice(WORDS)}/{rng.choice(WORDS)}?page={rng.randint(1, 99)}"
        elif roll < 0.03:
            part = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}({rng.choice(WORDS)}={rng.randint(0, 999)})\n"
        else:
            part = rng.choice(WORDS) + rng.choice(("", "", "", "", ",", ".", "\n"))
        parts.append(part)
        length += len(part) + 1
    return " ".join(parts)


def text_body(size: int, rng: random.Random) -> bytes:
    messages = [{"role": "user", "content": prose(size - 120, rng)}]
    return json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages}).encode()


def image_body(size: int, rng: random.Random) -> bytes:
    image = base64.b64encode(rng.randbytes(size * 3 // 4 - 300)).decode()
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
        {"type": "text", "text": "What is in this picture?"},
    ]
    body = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": content}]}
    return json.dumps(body).encode()


def measure(func: Callable[[], object], *, runs: int, budget: float) -> tuple[float, float]:
    """Median wall and CPU seconds of ``func`` over at most ``runs`` runs and about ``budget`` seconds."""
    walls: list[float] = []
    cpus: list[float] = []
    deadline = time.monotonic() + budget
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        func()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
        if time.monotonic() > deadline and len(walls) >= 5:
            break
    return statistics.median(walls), statistics.median(cpus)


def compare(values: list[tuple[str, bytes]], body: bytes) -> list[tuple[str, str, str]]:
    """One automaton over every literal and the whole body, as a baseline for the sampled design."""
    import ahocorasick_rs

    literals = list({literal for _, value in values for _, literal in encoded_forms(value)})
    rows = []
    automaton = ahocorasick_rs.BytesAhoCorasick(literals)
    wall, cpu = measure(lambda: automaton.find_matches_as_indexes(body, overlapping=True), runs=20, budget=5)
    rows.append(("1 MB text, ahocorasick_rs, one unsampled automaton", f"{len(body) / wall / 1e6:,.0f} MB/s", cpu))
    try:
        import ahocorasick  # pyahocorasick, if installed
    except ImportError:
        return [(name, wall_text, f"{len(body) / c / 1e6:,.0f} MB/s") for name, wall_text, c in rows]
    pyaho = ahocorasick.Automaton()
    for literal in literals:
        pyaho.add_word(literal.decode("latin-1"), None)
    pyaho.make_automaton()
    wall, cpu = measure(lambda: sum(1 for _ in pyaho.iter(body.decode("latin-1"))), runs=10, budget=5)
    rows.append(("1 MB text, pyahocorasick, one automaton (latin-1 str)", f"{len(body) / wall / 1e6:,.0f} MB/s", cpu))
    return [(name, wall_text, f"{len(body) / c / 1e6:,.0f} MB/s") for name, wall_text, c in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--secrets", type=int, default=1000, help="how many vault secrets the scanner holds")
    parser.add_argument("--seed", type=int, default=7, help="seed for the bodies (secrets are always random)")
    parser.add_argument("--compare", action="store_true", help="also time one unsampled automaton (baseline)")
    parser.add_argument("--write", type=Path, help="also write the results as markdown to this file")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    values = fake_secrets(args.secrets, rng)
    small, big, image = text_body(10_240, rng), text_body(1 << 20, rng), image_body(1 << 20, rng)

    build_wall, build_cpu = measure(lambda: LeakScanner(values), runs=3, budget=10)
    scanner = LeakScanner(values)
    for body in (small, big, image):
        assert not scanner.scan(body), "a benchmark body holds a finding: change --seed"
    rows = [("build, " + repr(scanner), f"{build_wall * 1e3:,.0f} ms", f"{build_cpu * 1e3:,.0f} ms")]
    wall, cpu = measure(lambda: scanner.scan(small), runs=2000, budget=5)
    rows.append((f"scan a {len(small):,}-byte text body (median)", f"{wall * 1e6:,.0f} µs", f"{cpu * 1e6:,.0f} µs"))
    wall, cpu = measure(lambda: scanner.scan(small, limit=1), runs=2000, budget=5)
    rows.append(("the same with limit=1 (the gateway's call)", f"{wall * 1e6:,.0f} µs", f"{cpu * 1e6:,.0f} µs"))
    for label, body in (("text", big), ("base64 image", image)):
        wall, cpu = measure(lambda body=body: scanner.scan(body), runs=30, budget=5)
        mbs = len(body) / 1e6
        rows.append((f"scan a {len(body):,}-byte {label} body", f"{mbs / wall:,.0f} MB/s", f"{mbs / cpu:,.0f} MB/s"))
    if args.compare:
        rows += compare(values, big)
    rows.append(
        ("peak resident memory of this process", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB", "")
    )

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {stamp}, {args.secrets:,} secrets, on {os.cpu_count()} cores "
        f"(load average {os.getloadavg()[0]:.1f} at the end; other work on the machine slows the wall clock):",
        "",
        "| measure | wall clock | CPU time |",
        "|---|---|---|",
        *(f"| {name} | {wall_text} | {cpu_text} |" for name, wall_text, cpu_text in rows),
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        args.write.write_text(table + "\n")


if __name__ == "__main__":
    main()
