"""What the ``gatepass run`` tests share: the owner's (fake) secrets, a child program, and the run itself.

The child (:data:`CHILD`) is a Python script that performs the steps it is given and records what it
saw in a JSON file after each one, so a test can read what happened even when the child was killed::

    env            the child's environment, exactly as exec'd (/proc/self/environ)
    sdk            one message through the official anthropic SDK, configured by the environment only
    http           one raw request to $ANTHROPIC_BASE_URL/v1/messages with $ANTHROPIC_API_KEY
    read:PATH      the file's text, or the error
    write:PATH     writes "written" to PATH
    connect:PORT   a TCP connection to the host's 127.0.0.1:PORT, or the error
    proxy:URL      a GET of URL through the proxy the environment names: [status, x-gatepass-denied]
    exfil:URL      a POST of the whole environment to URL through the proxy: [status, x-gatepass-denied]
    prompt-env     the whole environment inside a prompt, through the anthropic SDK: [status, x-gatepass-denied]
    prompt:PATH    the file's text inside a prompt, through the anthropic SDK: [status, x-gatepass-denied]
    caps           the effective capabilities
    trap           ignore SIGTERM from now on
    usr1           on SIGUSR1, record "usr1"
    ready          record "ready" (tests wait for it), then go on
    sleep          sleep (up to 60 s) until a signal ends the child
    exit:N         exit with status N
    kill:N         send itself signal N
"""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatepass.testing.fake_upstream import FakeUpstream, fake_upstream_in_thread
from tests.conftest import Gp
from tests.dataplane.harness import GatewayThread, prepare_home

AGENT = "acme-research-dev"
HAIKU = "claude-haiku-4-5-20251001"

CHILD = r"""
import json, os, signal, socket, sys, time, urllib.request, urllib.error

out, steps = sys.argv[1], sys.argv[2:]
seen = {}

def save():
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(seen, f)
    os.replace(tmp, out)

for step in steps:
    name, _, arg = step.partition(":")
    if name == "env":
        with open("/proc/self/environ", "rb") as f:
            items = [i.decode() for i in f.read().split(b"\0") if i]
        seen["env"] = dict(i.split("=", 1) for i in items)
    elif name == "sdk":
        import anthropic
        client = anthropic.Anthropic(max_retries=0)
        message = client.messages.create(
            model="claude-haiku-4-5-20251001", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        seen["sdk"] = message.content[0].text
    elif name == "http":
        request = urllib.request.Request(
            os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
            data=json.dumps({"model": "claude-haiku-4-5-20251001", "max_tokens": 8,
                             "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"], "content-type": "application/json",
                     "anthropic-version": "2023-06-01"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=30) as response:
                seen["http"] = response.status
        except urllib.error.HTTPError as exc:
            seen["http"] = exc.code
    elif name == "read":
        try:
            with open(arg) as f:
                seen["read:" + arg] = f.read()
        except OSError as exc:
            seen["read:" + arg] = "error: " + exc.__class__.__name__
    elif name == "write":
        with open(arg, "w") as f:
            f.write("written")
        seen["write:" + arg] = "ok"
    elif name == "connect":
        try:
            socket.create_connection(("127.0.0.1", int(arg)), timeout=5).close()
            seen["connect"] = "connected"
        except OSError as exc:
            seen["connect"] = "error: " + exc.__class__.__name__
    elif name == "proxy":
        try:
            with urllib.request.urlopen(arg, timeout=30) as response:
                seen["proxy"] = [response.status, response.headers.get("x-gatepass-denied")]
        except urllib.error.HTTPError as exc:
            seen["proxy"] = [exc.code, exc.headers.get("x-gatepass-denied")]
    elif name == "exfil":
        request = urllib.request.Request(arg, data=json.dumps(dict(os.environ)).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                seen["exfil"] = [response.status, response.headers.get("x-gatepass-denied")]
        except urllib.error.HTTPError as exc:
            seen["exfil"] = [exc.code, exc.headers.get("x-gatepass-denied")]
        except OSError as exc:
            seen["exfil"] = "error: " + exc.__class__.__name__
    elif name in ("prompt-env", "prompt"):
        import anthropic
        if name == "prompt":
            with open(arg) as f:
                text = f.read()
        else:
            text = "Here are all my environment variables: " + json.dumps(dict(os.environ))
        client = anthropic.Anthropic(max_retries=0)
        try:
            client.messages.create(
                model="claude-haiku-4-5-20251001", max_tokens=16, messages=[{"role": "user", "content": text}]
            )
            seen[step] = [200, None]
        except anthropic.APIStatusError as exc:
            seen[step] = [exc.status_code, exc.response.headers.get("x-gatepass-denied")]
    elif name == "caps":
        with open("/proc/self/status") as f:
            seen["caps"] = [l.split()[1] for l in f if l.startswith("CapEff:")][0]
    elif name == "trap":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif name == "usr1":
        def on_usr1(sig, frame):
            seen["usr1"] = True
            save()
        signal.signal(signal.SIGUSR1, on_usr1)
    elif name == "ready":
        seen["ready"] = os.getpid()
    elif name == "sleep":
        save()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.05)
    elif name == "exit":
        save()
        sys.exit(int(arg))
    elif name == "kill":
        save()
        os.kill(os.getpid(), int(arg))
        time.sleep(5)
    save()
"""


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def owner_secrets() -> dict[str, str]:
    """Real-looking credentials of the owner, made now (never a literal in the repository)."""
    return {
        "AWS_ACCESS_KEY_ID": "AKIA" + _random(string.ascii_uppercase + "234567", 16),
        "AWS_SECRET_ACCESS_KEY": _random(string.ascii_letters + string.digits + "/+", 40),
        "AWS_SESSION_TOKEN": secrets.token_urlsafe(96),
        "ANTHROPIC_API_KEY": "sk-ant-api03-" + secrets.token_urlsafe(70),
        "OPENAI_API_KEY": "sk-proj-" + secrets.token_urlsafe(60),
        "GITHUB_TOKEN": "ghp_" + _random(string.ascii_letters + string.digits, 36),
        "GH_TOKEN": "gho_" + _random(string.ascii_letters + string.digits, 36),
        "DATABASE_URL": f"postgresql://admin:{secrets.token_urlsafe(18)}@db.internal:5432/production",
        "PGPASSWORD": secrets.token_urlsafe(18),
    }


def owner_environment(gphome: Path, home: Path, owner: dict[str, str]) -> dict[str, str]:
    """A parent environment with everything the allowlist passes, gatepass's own and the owner's secrets."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_MESSAGES": "C.UTF-8",
        "TERM": "dumb",
        "TZ": "UTC",
        "USER": "owner",
        "LOGNAME": "owner",
        "SHELL": "/bin/sh",
        "GATEPASS_HOME": str(gphome),
        "SOMETHING_ELSE": "not allowlisted",
        **owner,
    }


def set_run_config(gphome: Path, **values: str) -> None:
    """Replace lines of the home's ``[run]`` section, e.g. ``grace_seconds="1.0"``, ``env='["X"]'``."""
    path = gphome / "config.toml"
    lines = path.read_text().splitlines()
    start = lines.index("[run]")
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("["):
            break
        name = lines[i].partition(" = ")[0]
        if name in values:
            lines[i] = f"{name} = {values[name]}"
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Run:
    """A ``python -m gatepass run`` process and what it left."""

    process: subprocess.Popen[str]
    out: Path
    stdout: str = ""
    stderr: str = ""

    def seen(self) -> dict[str, Any]:
        return json.loads(self.out.read_text()) if self.out.exists() else {}

    def wait_for(self, key: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.seen()
            if key in seen:
                return seen
            assert self.process.poll() is None, self.finish()
            time.sleep(0.05)
        raise AssertionError(f"the child never recorded {key!r}")

    def finish(self, timeout: float = 120) -> int:
        self.stdout, self.stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode

    def key_id(self) -> str:
        for line in self.stderr.splitlines():
            if " with key " in line:
                return line.split(" with key ")[1].split()[0]
        raise AssertionError(f"no key id in {self.stderr!r}")


def start_run(env: dict[str, str], cwd: Path, steps: list[str], *options: str) -> Run:
    """``gatepass run [options] AGENT -- python child.py OUT STEPS...`` in ``cwd`` (the script and OUT go there)."""
    script, out = cwd / "child.py", cwd / "child.json"
    script.write_text(CHILD)
    command = [sys.executable, "-m", "gatepass", "run", *options, AGENT, "--", sys.executable, str(script), str(out)]
    process = subprocess.Popen(
        [*command, *steps], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return Run(process, out)


@dataclass
class World:
    """A home with anthropic and openai upstreams on the fake, the agent granted both, and the owner."""

    gp: Gp
    gphome: Path
    home: Path
    work: Path
    fake: FakeUpstream
    upstream_secrets: dict[str, str]
    owner: dict[str, str]
    env: dict[str, str]
    gateway: GatewayThread | None = None

    def key(self, key_id: str) -> dict[str, Any]:
        result = self.gp("key", "list", "--all", "--json")
        assert result.code == 0, result
        return next(k for k in json.loads(result.out) if k["id"] == key_id)

    def audit(self, prefix: str) -> list[dict[str, Any]]:
        result = self.gp("audit", "tail", "-n", "1000", "--action", prefix, "--json")
        assert result.code == 0, result
        return json.loads(result.out)  # type: ignore[no-any-return]


@contextmanager
def world(gp: Gp, gphome: Path, tmp_path: Path, *, gateway: bool = True) -> Iterator[World]:
    """The fake upstream, a prepared home, and (with ``gateway``) a running gateway for it."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    with fake_upstream_in_thread() as fake:
        values = prepare_home(gp, fake.url)
        fake.expect_key("anthropic", values["anthropic"])
        fake.expect_key("openai", values["openai"])
        owner = owner_secrets()
        w = World(gp, gphome, home, work, fake, values, owner, owner_environment(gphome, home, owner))
        w.gateway = GatewayThread() if gateway else None
        try:
            yield w
        finally:
            if w.gateway is not None:
                w.gateway.stop()
