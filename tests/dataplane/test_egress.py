"""The egress proxy through a real gateway: tunnels, forwarding, allowlists, report mode, refusals, audit.

Loopback servers are reached through ``[egress] allow_networks = ["127.0.0.1/32"]``; the SSRF
refusals without that override are in test_egress_ssrf.py.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from gatepass.dataplane import egress as egress_module
from gatepass.errors import UpstreamConnectTimeoutError
from gatepass.keyformat import generate_key
from tests.dataplane.egressharness import (
    AGENT,
    WAIT,
    EchoServer,
    ProxyHome,
    WebServer,
    ask,
    basic,
    connect_head,
    proxy_home,
    recv_exactly,
)
from tests.dataplane.http.helpers import self_signed_cert


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        yield server


@pytest.fixture(scope="module")
def tls_web() -> Iterator[tuple[WebServer, bytes]]:
    cert, key = self_signed_cert("127.0.0.1")
    folder = Path(os.environ.get("TMPDIR", "/tmp"))
    pem = folder / f"gp-egress-{os.getpid()}.pem"
    pem.write_bytes(cert + key)
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem)
    finally:
        pem.unlink()
    with WebServer(tls=context) as server:
        yield server, cert


@pytest.fixture(scope="module")
def ph(
    tmp_path_factory: pytest.TempPathFactory, echo: EchoServer, web: WebServer, tls_web: tuple[WebServer, bytes]
) -> Iterator[ProxyHome]:
    with proxy_home(
        tmp_path_factory.mktemp("egress"),
        allow_networks='["127.0.0.1/32"]',
        idle_timeout="2.0",
        max_tunnels_per_agent="4",
    ) as home:
        home.ok("egress", "allow", AGENT, f"127.0.0.1:{echo.port},{web.port},{tls_web[0].port}")
        yield home


def records(ph: ProxyHome, request_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The request's audit records, waiting (bounded) for ``count`` of them (a close record comes last)."""
    deadline = time.monotonic() + WAIT
    while True:
        found = ph.records(request_id)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def denied(reply_status: int, reply: Any, code: str) -> None:
    assert (reply.status, reply.headers.get("x-gatepass-denied")) == (reply_status, code), reply
    assert reply.headers["x-gatepass-request-id"].startswith("req_")
    assert reply.json()["error"]["code"] == code


# -- tunnels -----------------------------------------------------------------------------------


def test_a_tunnel_carries_bytes_both_ways_and_is_audited(ph: ProxyHome, echo: EchoServer) -> None:
    reply = ask(ph.port, connect_head(f"127.0.0.1:{echo.port}", basic(ph.key)) + b"sent-with-the-head|")
    assert reply.status == 200 and "content-length" not in reply.headers
    request_id = reply.headers["x-gatepass-request-id"]
    sock = reply.sock
    assert reply.body + recv_exactly(sock, 19 - len(reply.body)) == b"sent-with-the-head|"
    payload = os.urandom(8 * 1024 * 1024)

    def send() -> None:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    received = reply.read_until_closed()
    sender.join(WAIT)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    decision, close = records(ph, request_id, 2)
    assert (decision["action"], decision["target"], decision["decision"], decision["reason"]) == (
        "egress",
        f"127.0.0.1:{echo.port}",
        "allow",
        "allowed",
    )
    meta = decision["meta"]
    assert (meta["method"], meta["addresses"], meta["port"], meta["client_ip"]) == (
        "CONNECT",
        ["127.0.0.1"],
        echo.port,
        "127.0.0.1",
    )
    assert meta["agent_id"].startswith("ag_") and meta["key"].startswith("key_") and meta["rule"].startswith("eg_")
    assert (close["action"], close["decision"], close["reason"]) == ("egress.close", "ok", "client")
    assert close["meta"]["bytes_up"] == close["meta"]["bytes_down"] == len(payload) + 19
    assert ph.gateway.service.metrics.egress_bytes == [len(payload) + 19, len(payload) + 19]
    assert close["meta"]["address"] == "127.0.0.1" and close["meta"]["duration_ms"] >= 0
    assert decision["seq"] < close["seq"]
    assert ph.key not in json.dumps([decision, close]) and "authorization" not in json.dumps([decision, close])


def test_real_clients_through_the_proxy(ph: ProxyHome, web: WebServer, tls_web: tuple[WebServer, bytes]) -> None:
    proxy = ph.proxy_url(ph.key)
    # urllib sends plain http:// URLs in absolute form, with the proxy's credentials.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
    with opener.open(f"http://127.0.0.1:{web.port}/hello?x=1", timeout=WAIT) as response:
        assert json.loads(response.read()) == {"method": "GET", "path": "/hello?x=1", "body": ""}
        assert response.headers["x-gatepass-request-id"].startswith("req_")
    seen = web.requests[-1]
    assert "proxy-authorization" not in seen.headers and "proxy-connection" not in seen.headers
    assert seen.headers["host"] == f"127.0.0.1:{web.port}"
    # http.client tunnels with CONNECT, then speaks HTTP/1.1 (keep-alive) inside the tunnel.
    conn = http.client.HTTPConnection("127.0.0.1", ph.port, timeout=WAIT)
    conn.set_tunnel("127.0.0.1", web.port, headers={"Proxy-Authorization": basic(ph.key)})
    for path in ("/tunnelled/1", "/tunnelled/2"):
        conn.request("GET", path)
        assert json.loads(conn.getresponse().read())["path"] == path
    conn.close()
    # httpx2 (the SDKs' HTTP client) with TLS end to end through CONNECT.
    server, cert = tls_web
    verify = ssl.create_default_context(cadata=cert.decode())
    with httpx2.Client(proxy=proxy, verify=verify, timeout=WAIT) as client:
        secure = client.get(f"https://127.0.0.1:{server.port}/secure")
        assert secure.status_code == 200 and secure.json()["path"] == "/secure"
        plain = client.post(f"http://127.0.0.1:{web.port}/form", content=b"a=1")
        assert plain.json() == {"method": "POST", "path": "/form", "body": "a=1"}
    assert server.requests[-1].path == "/secure"


def test_forwarding_drops_proxy_credentials_and_hop_by_hop_headers(ph: ProxyHome, web: WebServer) -> None:
    body = b'{"q": "forwarded"}'
    head = (
        f"POST http://127.0.0.1:{web.port}/submit?token=abc HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n"
        f"Proxy-Authorization: {basic(ph.key)}\r\nProxy-Connection: keep-alive\r\nConnection: x-hop\r\n"
        f"X-Hop: dropped\r\nX-Kept: yes\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    reply = ask(ph.port, head + body)
    assert reply.status == 200 and reply.json()["body"] == body.decode()
    seen = web.requests[-1]
    assert (seen.method, seen.path, seen.body, seen.headers["x-kept"]) == ("POST", "/submit?token=abc", body, "yes")
    assert not {"proxy-authorization", "proxy-connection", "x-hop"} & set(seen.headers)
    decision, close = records(ph, reply.headers["x-gatepass-request-id"], 2)
    assert (decision["decision"], decision["meta"]["path"], decision["meta"]["method"]) == ("allow", "/submit", "POST")
    assert (close["reason"], close["meta"]["status"], close["meta"]["bytes_down"]) == ("complete", 200, len(reply.body))
    assert "token=abc" not in json.dumps([decision, close])  # the query may carry secrets: not recorded


# -- refusals ----------------------------------------------------------------------------------


def test_allowlist_misses_are_refused_and_audited(ph: ProxyHome, echo: EchoServer) -> None:
    before = echo.connections
    plain = f"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nProxy-Authorization: {basic(ph.key)}\r\n\r\n"
    cases = [
        (connect_head("127.0.0.1:1", basic(ph.key)), "port_not_allowed", "not on port 1"),
        (connect_head("api.example.com:443", basic(ph.key)), "host_not_allowed", "may not reach api.example.com"),
        (plain.encode(), "host_not_allowed", "gatepass egress allow acme-research-dev example.com:80"),
    ]
    for head, code, message in cases:
        reply = ask(ph.port, head)
        denied(403, reply, code)
        assert message in reply.json()["error"]["message"]
        assert reply.headers["x-should-retry"] == "false"
        # After a refused CONNECT, a tunnel's bytes may follow: the connection closes.
        assert (reply.headers.get("connection") == "close") is head.startswith(b"CONNECT")
        (record,) = records(ph, reply.headers["x-gatepass-request-id"])
        assert (record["action"], record["decision"], record["reason"], record["meta"]["status"]) == (
            "egress",
            "deny",
            code,
            403,
        )
        assert "addresses" not in record["meta"]  # refused before any name was resolved
    assert echo.connections == before
    exposition = ph.gateway.service.metrics.render().decode()
    assert 'gatepass_egress_decisions_total{decision="deny",reason="host_not_allowed"} 2.0' in exposition
    assert 'gatepass_egress_decisions_total{decision="deny",reason="port_not_allowed"} 1.0' in exposition
    assert "gatepass_egress_open 0.0" in exposition


def test_report_mode_lets_an_allowlist_miss_through_but_not_an_internal_address(
    ph: ProxyHome, echo: EchoServer
) -> None:
    key = ph.agent("acme-report-dev", "--mode", "report")
    reply = ask(ph.port, connect_head(f"127.0.0.1:{echo.port}", basic(key, "acme-report-dev")) + b"ping")
    assert reply.status == 200
    assert reply.body + recv_exactly(reply.sock, 4 - len(reply.body)) == b"ping"
    reply.sock.close()
    (record, *_) = records(ph, reply.headers["x-gatepass-request-id"])
    assert (record["decision"], record["reason"], record["meta"]["report_only"]) == (
        "allow",
        "host_not_allowed",
        "host_not_allowed",
    )
    internal = ask(ph.port, connect_head("10.0.0.1:443", basic(key, "acme-report-dev")))
    denied(403, internal, "address_not_allowed")
    unauthenticated = ask(ph.port, connect_head(f"127.0.0.1:{echo.port}", basic("gp_nope", "acme-report-dev")))
    denied(407, unauthenticated, "key_malformed")


@pytest.fixture(scope="module")
def creds(ph: ProxyHome) -> dict[str, str]:
    """Keys in every state the proxy refuses."""
    revoked = ph.agent("acme-revoked-dev")
    ph.ok("revoke", "acme-revoked-dev")
    suspended = ph.agent("acme-suspended-dev")
    ph.ok("agent", "suspend", "acme-suspended-dev")
    expired = ph.issue(AGENT, "--ttl", "1s")
    elsewhere = ph.issue(AGENT, "--cidr", "10.0.0.0/8")
    time.sleep(1.1)  # the 1 s key expires
    return {
        "key": ph.key,
        "revoked": revoked,
        "suspended": suspended,
        "expired": expired,
        "elsewhere": elsewhere,
        "unknown": generate_key().reveal(),
        "mangled": ph.key[:-1] + ("A" if ph.key[-1] != "A" else "B"),
        "no_colon": base64.b64encode(ph.key.encode()).decode(),
    }


@pytest.mark.parametrize(
    ("auth", "status", "code"),
    [
        (None, 407, "key_missing"),
        ("Bearer {key}", 407, "key_malformed"),
        ("Basic !!!", 407, "key_malformed"),
        ("Basic {no_colon}", 407, "key_malformed"),
        ("user:gp_notakey", 407, "key_malformed"),
        ("acme-research-dev:{mangled}", 407, "key_malformed"),
        ("acme-research-dev:{unknown}", 407, "key_unknown"),
        ("acme-revoked-dev:{revoked}", 407, "key_revoked"),
        ("acme-research-dev:{expired}", 407, "key_expired"),
        ("acme-suspended-dev:{key}", 407, "agent_mismatch"),
        ("acme-suspended-dev:{suspended}", 403, "agent_suspended"),
        ("acme-research-dev:{elsewhere}", 403, "source_not_allowed"),
    ],
)
def test_credential_refusals(
    ph: ProxyHome, echo: EchoServer, creds: dict[str, str], auth: str | None, status: int, code: str
) -> None:
    header: str | None
    if auth is None or auth.startswith(("Bearer", "Basic")):
        header = None if auth is None else auth.format(**creds)
    else:
        user, _, key = auth.format(**creds).partition(":")
        header = basic(key, user)
    reply = ask(ph.port, connect_head(f"127.0.0.1:{echo.port}", header))
    denied(status, reply, code)
    assert ("proxy-authenticate" in reply.headers) is (status == 407)
    if status == 407:
        assert reply.headers["proxy-authenticate"] == 'Basic realm="gatepass"'
    (record,) = records(ph, reply.headers["x-gatepass-request-id"])
    assert (record["decision"], record["reason"], record["meta"]["status"]) == ("deny", code, status)
    text = json.dumps(record) + reply.body.decode()
    assert not any(value in text for value in creds.values())


@pytest.mark.parametrize(
    ("head", "status", "code"),
    [
        (b"CONNECT 127.0.0.1 HTTP/1.1\r\n", 400, "bad_target"),
        (b"CONNECT 127.0.0.1:0 HTTP/1.1\r\n", 400, "bad_target"),
        (b"CONNECT 127.0.0.1:65536 HTTP/1.1\r\n", 400, "bad_target"),
        (b"CONNECT user@127.0.0.1:443 HTTP/1.1\r\n", 400, "bad_target"),
        (b"CONNECT 127.0.0.1:443/path HTTP/1.1\r\n", 400, "bad_target"),
        (b"CONNECT exa\xc3\xa9mple.com:443 HTTP/1.1\r\n", 400, "bad_request"),  # llhttp refuses non-ASCII
        (b"GET https://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n", 400, "use_connect"),
        (b"GET http://127.0.0.1:{web}/ HTTP/1.1\r\nHost: elsewhere.example\r\n", 400, "host_mismatch"),
        (b"GET http://u:p@127.0.0.1:{web}/ HTTP/1.1\r\n", 400, "bad_target"),
        (b"CONNECT 127.0.0.1:{web} HTTP/1.1\r\nContent-Length: 4\r\n", 400, "bad_request"),
        (b"CONNECT 127.0.0.1:{web} HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n", 431, "header_too_large"),
    ],
)
def test_bad_proxy_requests_get_clear_errors(
    ph: ProxyHome, web: WebServer, head: bytes, status: int, code: str
) -> None:
    before = len(web.requests)
    head = head.replace(b"{web}", str(web.port).encode())
    reply = ask(ph.port, head + f"Proxy-Authorization: {basic(ph.key)}\r\n\r\n".encode())
    assert (reply.status, reply.headers.get("x-gatepass-denied")) == (status, code), reply.body
    assert reply.json()["error"]["message"] and ph.key not in reply.body.decode()
    assert len(web.requests) == before


def test_an_upstream_that_refuses_or_stays_silent_is_502_or_504(
    ph: ProxyHome, web: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    ph.ok("egress", "allow", AGENT, f"127.0.0.1:{closed}")
    refused = ask(ph.port, connect_head(f"127.0.0.1:{closed}", basic(ph.key)))
    denied(502, refused, "upstream_unavailable")
    assert refused.headers.get("x-should-retry") is None  # waiting may fix it
    decision, close = records(ph, refused.headers["x-gatepass-request-id"], 2)  # the connect ran with the record
    assert (decision["decision"], close["reason"], close["meta"]["status"]) == ("allow", "upstream_unavailable", 502)

    # A host that does not answer within the connect timeout (filtered): the connect never completes.
    # The stand-in gives up after a second, not the configured 10 s, which would race this client's own
    # 10 s wait for the answer.
    async def unanswered(address: str, port: int, factory: Any, *, timeout: float, label: str) -> Any:
        await asyncio.sleep(min(timeout, 1.0))
        raise UpstreamConnectTimeoutError(f"connecting to {label} took longer than {timeout:g} s")

    monkeypatch.setattr(egress_module, "connect_address", unanswered)
    try:
        late = ask(ph.port, connect_head(f"127.0.0.1:{web.port}", basic(ph.key)))
    finally:
        monkeypatch.undo()
    denied(504, late, "upstream_timeout")
    assert records(ph, late.headers["x-gatepass-request-id"], 2)[1]["reason"] == "upstream_timeout"
    started = time.monotonic()
    silent = ask(
        ph.port,
        (
            f"GET http://127.0.0.1:{web.port}/silent HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n"
            f"Proxy-Authorization: {basic(ph.key)}\r\n\r\n"
        ).encode(),
    )
    denied(504, silent, "upstream_timeout")
    assert 1.5 < time.monotonic() - started < WAIT  # the idle timeout (2 s) bounds the wait
    decision, close = records(ph, silent.headers["x-gatepass-request-id"], 2)
    assert (decision["decision"], close["reason"], close["meta"]["status"]) == ("allow", "upstream_timeout", 504)


# -- tunnels' ends and bounds ------------------------------------------------------------------


def test_tunnels_end_when_either_side_closes_or_idles(ph: ProxyHome, echo: EchoServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as banner:
        port = banner.getsockname()[1]
        ph.ok("egress", "allow", AGENT, f"127.0.0.1:{port}")

        def serve_one() -> None:
            conn, _ = banner.accept()
            conn.sendall(b"220 hello\r\n")
            conn.close()

        threading.Thread(target=serve_one, daemon=True).start()
        reply = ask(ph.port, connect_head(f"127.0.0.1:{port}", basic(ph.key)))
        assert reply.status == 200
        assert reply.body + reply.read_until_closed() == b"220 hello\r\n"  # the upstream's close reaches the client
        reply.sock.close()
    assert records(ph, reply.headers["x-gatepass-request-id"], 2)[1]["reason"] == "upstream"
    client_closes = ask(ph.port, connect_head(f"127.0.0.1:{echo.port}", basic(ph.key)))
    client_closes.sock.close()
    assert records(ph, client_closes.headers["x-gatepass-request-id"], 2)[1]["reason"] == "client"
    idle = ask(ph.port, connect_head(f"127.0.0.1:{echo.port}", basic(ph.key)))
    started = time.monotonic()
    assert idle.read_until_closed() == b""
    assert 1.5 < time.monotonic() - started < WAIT
    assert records(ph, idle.headers["x-gatepass-request-id"], 2)[1]["reason"] == "idle"


def test_open_tunnels_are_bounded_per_agent(ph: ProxyHome, echo: EchoServer) -> None:
    key = ph.agent("acme-bound-dev")
    ph.ok("egress", "allow", "acme-bound-dev", f"127.0.0.1:{echo.port}")
    head = connect_head(f"127.0.0.1:{echo.port}", basic(key, "acme-bound-dev"))
    tunnels = [ask(ph.port, head) for _ in range(4)]
    assert [t.status for t in tunnels] == [200] * 4
    over = ask(ph.port, head)
    denied(429, over, "too_many_tunnels")
    assert over.headers["retry-after"] == "1" and "x-should-retry" not in over.headers
    assert ask(ph.port, connect_head(f"127.0.0.1:{echo.port}", basic(ph.key))).status == 200  # others still may
    tunnels[0].sock.close()
    deadline = time.monotonic() + WAIT
    while (again := ask(ph.port, head)).status != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert again.status == 200
    for tunnel in (*tunnels[1:], again):
        tunnel.sock.close()


def test_the_gateway_keeps_serving_llm_routes_meanwhile(ph: ProxyHome, echo: EchoServer) -> None:
    tunnel = ask(ph.port, connect_head(f"127.0.0.1:{echo.port}", basic(ph.key)))
    assert tunnel.status == 200
    assert ask(ph.port, b"CONNECT nonsense HTTP/1.1\r\n\r\n").status == 407
    client = anthropic.Anthropic(base_url=ph.url + "/anthropic", api_key=ph.key, max_retries=0)
    message = client.messages.create(
        model="claude-haiku-4-5-20251001", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content
    tunnel.sock.sendall(b"still here")
    assert recv_exactly(tunnel.sock, 10) == b"still here"
    tunnel.sock.close()


def test_the_leak_scan_sees_plain_http_requests_and_can_block_them(ph: ProxyHome, web: WebServer) -> None:
    egress = ph.gateway.service.egress
    seen: list[bytes] = []

    def scan(agent: Any, key: Any, data: bytes) -> tuple[str, str, str] | None:
        seen.append(data)
        if b"TOPSECRET" in data:
            return "leak_detected", "the request carries a secret: remove it", "secret:top"
        if b"explode" in data:
            raise RuntimeError("scanner bug")
        return None

    def post(body: bytes) -> Any:
        head = (
            f"POST http://127.0.0.1:{web.port}/out?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n"
            f"Proxy-Authorization: {basic(ph.key)}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        return ask(ph.port, head + body)

    before = len(web.requests)
    egress.scan = scan
    try:
        denied(403, post(b"TOPSECRET value"), "leak_detected")
        denied(500, post(b"explode"), "internal_error")  # a failing scanner refuses: fail closed
        assert post(b"harmless").status == 200
    finally:
        egress.scan = None
    assert len(web.requests) == before + 1
    assert seen[0].startswith(b"POST /out?q=1 HTTP/1.1\r\n") and seen[0].endswith(b"TOPSECRET value")
    assert all(b"roxy-authorization" not in data and ph.key.encode() not in data for data in seen)


def test_a_compressed_body_the_leak_guard_cannot_read_is_refused(ph: ProxyHome, web: WebServer) -> None:
    before = len(web.requests)
    for encoding, status, code in (("gzip", 415, "encoded_body"), ("identity", 200, None)):
        body = b"\x1f\x8b\x08\x00" if encoding == "gzip" else b"hello"
        head = (
            f"POST http://127.0.0.1:{web.port}/out HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n"
            f"Proxy-Authorization: {basic(ph.key)}\r\nContent-Encoding: {encoding}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        reply = ask(ph.port, head + body)
        if code is None:
            assert reply.status == status
        else:
            denied(status, reply, code)
    assert len(web.requests) == before + 1  # only the uncompressed one left


def test_sdk_calls_to_the_gateway_sent_through_the_proxy_reach_the_gateway(ph: ProxyHome) -> None:
    # An agent with HTTP_PROXY set and no NO_PROXY: its SDK sends gateway calls to the proxy as whole URLs.
    for host in ("127.0.0.1", "localhost"):
        http_client = httpx2.Client(proxy=ph.proxy_url(ph.key), timeout=WAIT)
        client = anthropic.Anthropic(
            base_url=f"http://{host}:{ph.port}/anthropic", api_key=ph.key, http_client=http_client, max_retries=0
        )
        raw = client.messages.with_raw_response.create(
            model="claude-haiku-4-5-20251001", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.status_code == 200 and raw.parse().content
        assert not ph.records(raw.headers["x-gatepass-request-id"])  # a gateway request, not a proxy one
        assert "proxy-authorization" not in ph.fake.requests[-1].headers


def test_a_decision_that_cannot_be_audited_has_no_effect(
    ph: ProxyHome, echo: EchoServer, web: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    before = len(web.requests)
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", disk_full)  # the audit log writes with os.write; sockets do not
        tunnel = ask(ph.port, connect_head(f"127.0.0.1:{echo.port}", basic(ph.key)) + b"must not arrive")
        plain = ask(
            ph.port,
            (
                f"GET http://127.0.0.1:{web.port}/x HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n"
                f"Proxy-Authorization: {basic(ph.key)}\r\n\r\n"
            ).encode(),
        )
    denied(500, tunnel, "audit_unavailable")  # fail closed
    assert tunnel.read_until_closed() == b""  # nothing was echoed: no byte went upstream
    denied(500, plain, "audit_unavailable")
    assert len(web.requests) == before
    assert ask(ph.port, connect_head(f"127.0.0.1:{echo.port}", basic(ph.key))).status == 200
