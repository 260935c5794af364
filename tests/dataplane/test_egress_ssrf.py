"""SSRF through the egress proxy: every internal address, in every spelling, is refused and audited,
even when the agent's allowlist names it (no ``allow_networks`` in this home)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gatepass.netguard import parse_host
from tests.dataplane.egressharness import AGENT, ProxyHome, ask, basic, connect_head, proxy_home

# (host as the agent writes it, the address it denotes, the category that refuses it)
FORMS = [
    ("127.0.0.1", "127.0.0.1", "loopback"),
    ("2130706433", "127.0.0.1", "loopback"),
    ("0177.0.0.1", "127.0.0.1", "loopback"),
    ("0x7f.0.0.1", "127.0.0.1", "loopback"),
    ("0x7f000001", "127.0.0.1", "loopback"),
    ("127.1", "127.0.0.1", "loopback"),
    ("127.0.0.1.", "127.0.0.1", "loopback"),
    ("[::ffff:127.0.0.1]", "127.0.0.1", "loopback"),
    ("[::ffff:7f00:1]", "127.0.0.1", "loopback"),
    ("[::1]", "::1", "loopback"),
    ("[::127.0.0.1]", "::7f00:1", "loopback"),
    ("[2002:7f00:1::]", "2002:7f00:1::", "loopback"),
    ("10.0.0.1", "10.0.0.1", "private"),
    ("172.16.5.4", "172.16.5.4", "private"),
    ("192.168.1.1", "192.168.1.1", "private"),
    ("3232235777", "192.168.1.1", "private"),
    ("[64:ff9b::a00:1]", "64:ff9b::a00:1", "private"),
    ("100.64.0.1", "100.64.0.1", "cgnat"),
    ("169.254.169.254", "169.254.169.254", "metadata"),
    ("0xa9fea9fe", "169.254.169.254", "metadata"),
    ("100.100.100.200", "100.100.100.200", "metadata"),
    ("[fd00:ec2::254]", "fd00:ec2::254", "metadata"),
    ("169.254.1.1", "169.254.1.1", "link_local"),
    ("[fe80::1]", "fe80::1", "link_local"),
    ("0.0.0.0", "0.0.0.0", "unspecified"),
    ("0", "0.0.0.0", "unspecified"),
    ("[::]", "::", "unspecified"),
    ("224.0.0.1", "224.0.0.1", "multicast"),
    ("[ff02::1]", "ff02::1", "multicast"),
    ("255.255.255.255", "255.255.255.255", "broadcast"),
    ("240.0.0.1", "240.0.0.1", "reserved"),
    ("[fc00::1]", "fc00::1", "unique_local"),
    ("[fec0::1]", "fec0::1", "site_local"),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"),
    ("localhost", None, "loopback"),
]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyHome]:
    with proxy_home(tmp_path_factory.mktemp("ssrf")) as home:
        # The allowlist names every one of them: the address check must refuse them all the same.
        names = sorted({parse_host(host).name if host != "localhost" else host for host, _, _ in FORMS})
        home.ok("egress", "allow", AGENT, *names)
        yield home


def _record(home: ProxyHome, reply: Any) -> dict[str, Any]:
    (record,) = home.records(reply.headers["x-gatepass-request-id"])
    return record


@pytest.mark.parametrize(("host", "address", "category"), FORMS)
def test_internal_addresses_are_refused_in_every_spelling(
    guarded: ProxyHome, host: str, address: str | None, category: str
) -> None:
    reply = ask(guarded.port, connect_head(f"{host}:443", basic(guarded.key)))
    assert (reply.status, reply.headers["x-gatepass-denied"]) == (403, "address_not_allowed"), reply.body
    message = reply.json()["error"]["message"]
    assert "allow_networks under [egress]" in message
    record = _record(guarded, reply)
    assert (record["decision"], record["reason"], record["meta"]["address_category"]) == (
        "deny",
        "address_not_allowed",
        category,
    )
    if address is not None:
        assert record["meta"]["address"] == address
    else:
        assert message.startswith("localhost resolves to ")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://0x7f.1/",
        "http://[::ffff:10.0.0.1]/admin",
        "http://localhost/",
    ],
)
def test_plain_http_to_internal_addresses_is_refused(guarded: ProxyHome, url: str) -> None:
    host = url.split("/")[2]
    head = f"GET {url} HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: {basic(guarded.key)}\r\n\r\n"
    reply = ask(guarded.port, head.encode())
    assert (reply.status, reply.headers["x-gatepass-denied"]) == (403, "address_not_allowed"), reply.body
    assert _record(guarded, reply)["meta"]["path"] == url.split(host, 1)[1].partition("?")[0]


def test_report_mode_does_not_open_internal_addresses(guarded: ProxyHome) -> None:
    key = guarded.agent("acme-watch-dev", "--mode", "report")
    for target in ("127.0.0.1:443", "169.254.169.254:80", "[::1]:8080"):
        reply = ask(guarded.port, connect_head(target, basic(key, "acme-watch-dev")))
        assert (reply.status, reply.headers["x-gatepass-denied"]) == (403, "address_not_allowed"), target
        record = _record(guarded, reply)
        assert (record["decision"], record["meta"]["report_only"]) == ("deny", "host_not_allowed")
