"""The egress proxy tests' world: a home and gateway of their own, loopback servers to reach, a raw client.

One :class:`ProxyHome` serves a whole test module (a gateway start is the slow part); tests keep to
their own agents and find their audit records by request id. Every wait is bounded.
"""

from __future__ import annotations

import base64
import http.server
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gatepass.cli.main import main
from gatepass.testing.fake_upstream import fake_upstream_in_thread
from tests.conftest import CliResult
from tests.dataplane.harness import GatewayThread, prepare_home

WAIT = 10.0
AGENT = "acme-research-dev"


class ProxyHome:
    """A home (fake LLM upstreams, agent ``acme-research-dev`` and a key) with its gateway running."""

    def __init__(self, root: Path, config: dict[str, str]) -> None:
        self.root = root
        self.home = root / "gphome"
        self._stack = ExitStack()
        fake = self._stack.enter_context(fake_upstream_in_thread())
        self.fake = fake
        self.secrets = prepare_home(self.gp, fake.url)
        fake.expect_key("anthropic", self.secrets["anthropic"])
        path = self.home / "config.toml"
        text = path.read_text()
        for name, value in config.items():
            line = next(line for line in text.splitlines() if line.startswith(f"{name} = "))
            text = text.replace(line, f"{name} = {value}", 1)
        path.write_text(text)
        self.key = self.issue(AGENT)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GATEPASS_HOME", str(self.home))
            mp.delenv("GATEPASS_MASTER_KEY", raising=False)
            mp.delenv("GATEPASS_STORE_URL", raising=False)
            self.gateway = GatewayThread()

    def gp(self, *args: str, input: str | None = None) -> CliResult:
        runner = CliRunner()
        env: dict[str, str | None] = {"GATEPASS_HOME": str(self.home), "GATEPASS_MASTER_KEY": None}
        with runner.isolation(input=input, env={**env, "GATEPASS_STORE_URL": None}) as (out, err, _):
            code = main(list(args))
        return CliResult(code, out.getvalue().decode(), err.getvalue().decode())

    def ok(self, *args: str) -> str:
        result = self.gp(*args)
        assert result.code == 0, result
        return result.out.strip()

    def issue(self, agent: str, *args: str) -> str:
        return self.ok("key", "issue", agent, *args)

    def agent(self, name: str, *args: str) -> str:
        """Create an agent (``args`` as for agent create) and return a key of its own."""
        self.ok("agent", "create", name, "--owner", "me@example.com", *args)
        return self.issue(name)

    @property
    def port(self) -> int:
        return int(self.gateway.url.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return self.gateway.url

    def proxy_url(self, key: str, agent: str = AGENT) -> str:
        return f"http://{agent}:{key}@127.0.0.1:{self.port}"

    def records(self, request_id: str) -> list[dict[str, Any]]:
        """The audit records of one proxy request, in order (its decision, then its close)."""
        found = json.loads(self.ok("audit", "tail", "-n", "5000", "--action", "egress", "--json"))
        return [r for r in found if r["meta"].get("request_id") == request_id]

    def close(self) -> None:
        try:
            self.gateway.stop()
        finally:
            self._stack.close()


@contextmanager
def proxy_home(root: Path, **config: str) -> Iterator[ProxyHome]:
    """``config`` replaces lines of config.toml by key, e.g. ``allow_networks='["127.0.0.1/32"]'``."""
    home = ProxyHome(root, config)
    try:
        yield home
    finally:
        home.close()


def basic(key: str, user: str = AGENT) -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


# -- a raw proxy client ------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    sock: socket.socket

    def json(self) -> Any:
        return json.loads(self.body)

    def read_until_closed(self) -> bytes:
        out = bytearray()
        while data := self.sock.recv(1 << 20):
            out += data
        return bytes(out)


def ask(port: int, head: bytes) -> Reply:
    """Send ``head`` (and what follows it) to the proxy; read the answer's head, and its body unless it is a 200
    to CONNECT. The socket stays open in the reply (close it, or let the test end)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(head)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the proxy closed the connection after {data!r}")
        data += chunk
    raw, _, rest = data.partition(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    body = rest
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Reply(status, headers, body, sock)


def connect_head(target: str, auth: str | None, extra: str = "") -> bytes:
    line = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if auth is not None:
        line += f"Proxy-Authorization: {auth}\r\n"
    return (line + extra + "\r\n").encode("latin-1")


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = sock.recv(min(1 << 20, size - len(out)))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {size} bytes")
        out += chunk
    return bytes(out)


# -- loopback servers to reach ------------------------------------------------------------------


class EchoServer(socketserver.ThreadingTCPServer):
    """Echoes every connection until its EOF; counts connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.connections = 0
        super().__init__(("127.0.0.1", 0), _Echo)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, EchoServer)
        self.server.connections += 1
        sock: socket.socket = self.request
        sock.settimeout(WAIT)
        try:
            while data := sock.recv(1 << 16):
                sock.sendall(data)
        except OSError:
            pass


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebServer:
    """An HTTP/1.1 server (TLS with ``tls``) that records requests and answers with JSON about them.

    ``/silent`` never answers (until the server stops); other paths answer 200.
    """

    tls: ssl.SSLContext | None = None
    requests: list[Seen] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    def __enter__(self) -> WebServer:
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if self.path == "/silent":
                    threading.Event().wait(WAIT)
                    return
                out = json.dumps({"method": self.command, "path": self.path, "body": body.decode()}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])
