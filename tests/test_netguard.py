"""Hosts, allowlist patterns and the SSRF defence: every numeric form is the address it denotes."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest

from gatepass.errors import UpstreamConnectError, UpstreamConnectTimeoutError
from gatepass.netguard import (
    Host,
    NetGuard,
    address_category,
    embedded_ipv4,
    parse_host,
    parse_networks,
    parse_pattern,
)


@pytest.mark.parametrize(
    ("text", "name", "ip"),
    [
        ("API.Example.COM", "api.example.com", None),
        ("api.example.com.", "api.example.com", None),
        ("xn--bcher-kva.example", "xn--bcher-kva.example", None),
        ("my_bucket.s3.example.com", "my_bucket.s3.example.com", None),
        ("1e100.net", "1e100.net", None),
        ("deadbeef", "deadbeef", None),
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1", "10.0.0.1"),
        ("[::1]", "::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1", "::ffff:7f00:1"),
        ("[::FFFF:7f00:1]", "::ffff:7f00:1", "::ffff:7f00:1"),
        ("2001:db8::1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_hosts_are_read_canonically(text: str, name: str, ip: str | None) -> None:
    host = parse_host(text)
    assert host == Host(name, None if ip is None else ipaddress.ip_address(ip))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (".", "empty"),
        ("bücher.de", "ASCII form (xn--"),
        ("exa mple.com", "not a valid host name"),
        ("a..b", "not a valid host name"),
        ("-a.example.com", "not a valid host name"),
        ("a-.example.com", "not a valid host name"),
        ("a" * 64 + ".com", "not a valid host name"),
        (("a" * 60 + ".") * 5 + "com", "not a valid host name"),
        ("127.0.0.1 foo", "not a valid host name"),
        ("1.2.3.4.5", "neither a host name nor an IPv4 address"),
        ("08.1.1.1", "neither a host name nor an IPv4 address"),
        ("4294967296", "neither a host name nor an IPv4 address"),
        ("host.0x10", "neither a host name nor an IPv4 address"),
        ("[fe80::1%eth0]", "zone"),
        ("[::1", "not a valid IPv6 address"),
        ("[1.2.3.4]", "not a valid IPv6 address"),
        ("exa\x00mple.com", "not a valid host name"),
    ],
)
def test_garbage_hosts_are_refused_with_a_sentence(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_host(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("rule", "host", "matches"),
    [
        ("api.example.com", "api.example.com", True),
        ("api.example.com", "API.example.com.", True),
        ("api.example.com", "x.api.example.com", False),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "badexample.com", False),
        ("*.Example.com.", "a.example.com", True),
        ("127.0.0.1", "2130706433", True),
        ("127.0.0.1", "0x7f.1", True),
        ("127.0.0.1", "[::ffff:127.0.0.1]", True),
        ("[::ffff:7f00:1]", "127.0.0.1", True),
        ("127.0.0.1", "localhost", False),
        ("localhost", "127.0.0.1", False),
        ("2001:db8::1", "[2001:DB8:0::1]", True),
    ],
)
def test_patterns_match(rule: str, host: str, matches: bool) -> None:
    assert parse_pattern(rule).matches(parse_host(host)) is matches


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("*.Example.COM", "*.example.com"), ("0x7f.1", "127.0.0.1"), ("[::ffff:7f00:1]", "127.0.0.1")],
)
def test_patterns_are_canonical(text: str, canonical: str) -> None:
    assert parse_pattern(text).text == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("*", "'*' may only be the whole first label"),
        ("*.com", "at least two labels"),
        ("*.127.0.0.1", "at least two labels"),
        ("a.*.example.com", "'*' may only be the whole first label"),
        ("*example.com", "'*' may only be the whole first label"),
        ("https://api.example.com", "no scheme or path"),
        ("api.example.com/v1", "no scheme or path"),
        ("user@api.example.com", "no scheme or path"),
    ],
)
def test_bad_patterns_say_how_to_write_them(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_pattern(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "cgnat"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("100.100.100.200", "metadata"),
        ("169.254.1.1", "link_local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("192.0.2.1", "documentation"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fd00:ec2::254", "metadata"),
        ("fc00::1", "unique_local"),
        ("fd12:3456::1", "unique_local"),
        ("fe80::1", "link_local"),
        ("fec0::1", "site_local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:0:a00:1", "private"),
        ("::127.0.0.1", "loopback"),
        ("64:ff9b::a00:1", "private"),
        ("64:ff9b::a9fe:a9fe", "metadata"),
        ("64:ff9b:1::1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("2002:a9fe:a9fe::1", "metadata"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"),
        ("2001:db8::1", "documentation"),
        ("100::1", "reserved"),
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
        ("2002:808:808::1", None),
    ],
)
def test_address_categories(address: str, category: str | None) -> None:
    assert address_category(ipaddress.ip_address(address)) == category


def test_embedded_ipv4() -> None:
    assert embedded_ipv4(ipaddress.ip_address("2002:c000:0204::1")) == ipaddress.IPv4Address("192.0.2.4")
    assert embedded_ipv4(ipaddress.ip_address("::1")) is None
    assert embedded_ipv4(ipaddress.ip_address("2606:4700::1111")) is None


def test_allow_networks_open_exactly_what_they_name() -> None:
    guard = NetGuard(parse_networks(["127.0.0.1/32", "fd00::/8"]))
    for opened in ("127.0.0.1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "fd00::5"):
        assert guard.refusal(ipaddress.ip_address(opened)) is None, opened
    for closed in ("127.0.0.2", "::1", "10.0.0.1", "169.254.169.254", "fc00::1"):
        assert guard.refusal(ipaddress.ip_address(closed)) is not None, closed
    assert NetGuard().refusal(ipaddress.ip_address("93.184.215.14")) is None


def test_refusal_sentences_say_what_and_how_to_open() -> None:
    guard = NetGuard()
    host = parse_host("metadata.internal.example")
    address = ipaddress.ip_address("169.254.169.254")
    sentence = guard.explain(host, address, "metadata")
    assert sentence.startswith("metadata.internal.example resolves to 169.254.169.254, a cloud metadata address: ")
    assert "allow_networks under [egress]" in sentence
    mapped = parse_host("[::ffff:127.0.0.1]")
    assert guard.explain(mapped, ipaddress.ip_address("127.0.0.1"), "loopback").startswith("127.0.0.1 is a loopback")
    nat64 = ipaddress.ip_address("64:ff9b::a00:1")
    assert "(it carries 10.0.0.1)" in guard.explain(Host(str(nat64), nat64), nat64, "private")


def test_parse_networks_names_the_bad_entry() -> None:
    assert [str(n) for n in parse_networks(["10.1.2.0/24", "::1/128"])] == ["10.1.2.0/24", "::1/128"]
    with pytest.raises(ValueError) as info:
        parse_networks(["10.1.2.3/24"])
    assert "'10.1.2.3/24' is not a network" in str(info.value) and "ADDRESS/PREFIX" in str(info.value)


async def test_an_ip_literal_is_not_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an IP literal was resolved")

    monkeypatch.setattr(loop, "getaddrinfo", no_dns)
    guard = NetGuard()
    assert await guard.resolve(parse_host("0x7f.1"), 443) == [ipaddress.ip_address("127.0.0.1")]
    assert await guard.resolve(parse_host("[::ffff:10.0.0.1]"), 443) == [ipaddress.ip_address("10.0.0.1")]


def _infos(*addresses: str) -> list[tuple[Any, ...]]:
    out = []
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        out.append((family, socket.SOCK_STREAM, 6, "", (address, 443)))
    return out


async def test_resolve_returns_every_address_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def fake(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        assert host == "rebind.example.com"
        return _infos("93.184.215.14", "10.0.0.7", "93.184.215.14", "::ffff:10.0.0.8", "fe80::1%eth0")

    monkeypatch.setattr(loop, "getaddrinfo", fake)
    guard = NetGuard()
    found = await guard.resolve(parse_host("rebind.example.com"), 443)
    assert [str(a) for a in found] == ["93.184.215.14", "10.0.0.7", "10.0.0.8", "fe80::1"]
    assert [guard.refusal(a) for a in found] == [None, "private", "private", "link_local"]


async def test_resolve_failures_and_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def missing(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(5)

    monkeypatch.setattr(loop, "getaddrinfo", missing)
    with pytest.raises(UpstreamConnectError) as info:
        await NetGuard().resolve(parse_host("nowhere.example"), 443)
    assert info.value.message == "nowhere.example does not resolve: check the host name"
    monkeypatch.setattr(loop, "getaddrinfo", slow)
    with pytest.raises(UpstreamConnectTimeoutError) as timeout:
        await NetGuard(resolve_timeout=0.05).resolve(parse_host("slow.example"), 443)
    assert "took longer than 0.05 s" in timeout.value.message


async def test_localhost_resolves_to_refused_addresses_only() -> None:
    guard = NetGuard()
    found = await guard.resolve(parse_host("localhost"), 443)
    assert found and all(guard.refusal(a) == "loopback" for a in found)
