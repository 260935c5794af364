"""Which hosts and addresses the egress proxy may reach: host parsing, allowlist patterns, SSRF defence.

Three steps, each refusing with a sentence that says what to do:

* :func:`parse_host` reads the host an agent asked for. DNS names are lowercased and lose one
  trailing dot; internationalised (non-ASCII) names and garbage are refused. A host that denotes an
  IPv4 address in any form the C library accepts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``,
  ``127.1``) is read as that address, so it cannot slip past the checks as a "name".
* :func:`parse_pattern` reads an allowlist entry: a name, ``*.domain`` (subdomains only) or an IP.
* :class:`NetGuard` resolves a name once (with a timeout) and refuses it if *any* address it
  resolves to is internal (see :func:`address_category`) unless ``allow_networks`` opens it. The
  caller connects to one of the returned addresses, never to the name: no second resolution, so
  no DNS rebinding.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gatepass.errors import UpstreamConnectError, UpstreamConnectTimeoutError

__all__ = [
    "DEFAULT_PORTS",
    "Host",
    "HostPattern",
    "IPAddress",
    "IPNetwork",
    "NetGuard",
    "address_category",
    "embedded_ipv4",
    "parse_host",
    "parse_networks",
    "parse_pattern",
]

DEFAULT_PORTS: Final = (80, 443)
"""The ports an allowlist entry without ports opens."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC: Final = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")  # a label that makes a host an IPv4 address
_IPV4_CHARS: Final = re.compile(r"[0-9a-fx.]+")


def _nets(*texts: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(t) for t in texts)


# Checked in order: the first network that holds an address names its category.
_V4: Final[tuple[tuple[str, tuple[IPNetwork, ...]], ...]] = (
    ("metadata", _nets("169.254.169.254/32", "169.254.170.2/32", "100.100.100.200/32")),
    ("unspecified", _nets("0.0.0.0/8")),
    ("loopback", _nets("127.0.0.0/8")),
    ("private", _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    ("cgnat", _nets("100.64.0.0/10")),
    ("link_local", _nets("169.254.0.0/16")),
    ("multicast", _nets("224.0.0.0/4")),
    ("broadcast", _nets("255.255.255.255/32")),
    ("reserved", _nets("240.0.0.0/4", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15")),
    ("documentation", _nets("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")),
)
_V6: Final[tuple[tuple[str, tuple[IPNetwork, ...]], ...]] = (
    ("unspecified", _nets("::/128")),
    ("loopback", _nets("::1/128")),
    ("metadata", _nets("fd00:ec2::254/128")),
    ("teredo", _nets("2001::/32")),
    ("private", _nets("64:ff9b:1::/48")),  # local-use NAT64
    ("unique_local", _nets("fc00::/7")),
    ("link_local", _nets("fe80::/10")),
    ("site_local", _nets("fec0::/10")),
    ("multicast", _nets("ff00::/8")),
    ("documentation", _nets("2001:db8::/32")),
    ("reserved", _nets("100::/64")),
)
# IPv6 prefixes that carry an IPv4 address: (network, bit offset of the IPv4 address from the top).
_EMBEDDING: Final = (
    (ipaddress.IPv6Network("::ffff:0:0/96"), 96),  # IPv4-mapped
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), 96),  # IPv4-translated (SIIT)
    (ipaddress.IPv6Network("64:ff9b::/96"), 96),  # NAT64
    (ipaddress.IPv6Network("::/96"), 96),  # IPv4-compatible (deprecated)
    (ipaddress.IPv6Network("2002::/16"), 16),  # 6to4
)
_WHAT: Final = {
    "metadata": "a cloud metadata address",
    "unspecified": "an unspecified address",
    "loopback": "a loopback address",
    "private": "a private-network address",
    "cgnat": "a carrier-grade NAT (100.64/10) address",
    "link_local": "a link-local address",
    "multicast": "a multicast address",
    "broadcast": "the broadcast address",
    "reserved": "a reserved address",
    "documentation": "a documentation-only address",
    "teredo": "a Teredo tunnel address",
    "unique_local": "an IPv6 unique-local address",
    "site_local": "an IPv6 site-local address",
}


@dataclass(frozen=True, slots=True)
class Host:
    """A host as asked for: ``name`` is the canonical text (lowercase DNS name, or the address as
    ``ipaddress`` prints it); ``ip`` is set when the host is an address in any accepted form."""

    name: str
    ip: IPAddress | None = None

    def label(self, port: int) -> str:
        """``host:port``, with an IPv6 address in brackets."""
        return f"[{self.name}]:{port}" if ":" in self.name else f"{self.name}:{port}"


def parse_host(text: str) -> Host:
    """Read a host (no port); ValueError with a sentence when it is not one."""
    if text.startswith("[") and text.endswith("]"):
        return Host(*_ipv6(text[1:-1]))
    if ":" in text:
        return Host(*_ipv6(text))
    name = text[:-1] if text.endswith(".") else text
    if not name:
        raise ValueError("the host is empty: give a name such as api.example.com")
    if not name.isascii():
        raise ValueError(
            f"{_show(text)} is an internationalised name: give it in its ASCII form (xn--...), as DNS sees it"
        )
    name = name.lower()
    if _IPV4_CHARS.fullmatch(name):
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            pass
        else:
            return Host(str(address), address)
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{_show(text)} is not a valid host name: use letters, digits, hyphens and dots")
    if _NUMERIC.fullmatch(labels[-1]):
        raise ValueError(f"{_show(text)} is neither a host name nor an IPv4 address: check the host")
    return Host(name)


def _ipv6(text: str) -> tuple[str, ipaddress.IPv6Address]:
    if "%" in text:
        raise ValueError("an IPv6 address with a zone (%...) cannot be reached through the proxy")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError(f"{_show(text)} is not a valid IPv6 address") from None
    return str(address), address


def _show(text: str) -> str:
    """A host for a message: quoted, cut short, control characters escaped."""
    return repr(text[:100])


@dataclass(frozen=True, slots=True)
class HostPattern:
    """An allowlist entry: an exact host, ``*.domain`` (every subdomain, not the domain itself), or an IP."""

    text: str
    ip: IPAddress | None = None

    def matches(self, host: Host) -> bool:
        if self.ip is not None:
            return host.ip is not None and _unmapped(host.ip) == self.ip
        if host.ip is not None:
            return False
        if self.text.startswith("*."):
            return host.name.endswith(self.text[1:])
        return host.name == self.text


def parse_pattern(text: str) -> HostPattern:
    """Read an allowlist host; ValueError with a sentence saying how to write it."""
    if "://" in text or "/" in text or "@" in text:
        raise ValueError(f"{_show(text)} is not a host: give only the host, e.g. api.example.com (no scheme or path)")
    if text.startswith("*."):
        rest = parse_host(text[2:])
        if rest.ip is not None or "." not in rest.name:
            raise ValueError(
                f"{_show(text)}: a wildcard stands for subdomains of a domain with at least two labels, "
                "e.g. *.example.com"
            )
        return HostPattern("*." + rest.name)
    if "*" in text:
        raise ValueError(f"{_show(text)}: '*' may only be the whole first label, as in *.example.com")
    host = parse_host(text)
    if host.ip is None:
        return HostPattern(host.name)
    address = _unmapped(host.ip)
    return HostPattern(str(address), address)


def parse_networks(texts: Sequence[str]) -> tuple[IPNetwork, ...]:
    """CIDRs such as ``10.1.2.0/24``; ValueError naming the bad one."""
    out = []
    for text in texts:
        try:
            out.append(ipaddress.ip_network(text))
        except ValueError as exc:
            raise ValueError(
                f"{text!r} is not a network ({exc}): write it as ADDRESS/PREFIX, e.g. 10.1.2.0/24"
            ) from None
    return tuple(out)


def _unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address behind an IPv4-mapped IPv6 address (the same endpoint), else the address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, translated, NAT64, compatible, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address) or int(address) <= 1:
        return None
    for network, offset in _EMBEDDING:
        if address in network:
            return ipaddress.IPv4Address((int(address) >> (96 - offset)) & 0xFFFFFFFF)
    return None


def address_category(address: IPAddress) -> str | None:
    """Why the proxy must not connect to ``address`` ("loopback", "private", ...), or None if public."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return address_category(inner)
    for category, networks in _V4 if isinstance(address, ipaddress.IPv4Address) else _V6:
        if any(address in network for network in networks):
            return category
    return None if address.is_global else "reserved"


class NetGuard:
    """Resolves hosts for the proxy and refuses internal addresses unless ``allow_networks`` opens them."""

    def __init__(self, allow_networks: Sequence[IPNetwork] = (), resolve_timeout: float = 5.0) -> None:
        self.allow_networks = tuple(allow_networks)
        self.resolve_timeout = resolve_timeout

    def refusal(self, address: IPAddress) -> str | None:
        """The category that forbids ``address`` (None: it may be reached)."""
        inner = embedded_ipv4(address)
        if any(address in net or (inner is not None and inner in net) for net in self.allow_networks):
            return None
        return address_category(address)

    def explain(self, host: Host, address: IPAddress, category: str) -> str:
        """The sentence for a refused address."""
        inner = embedded_ipv4(address)
        carried = f" (it carries {inner})" if inner is not None else ""
        what = _WHAT.get(category, "an internal address")
        if host.ip is not None and _unmapped(host.ip) == address:
            said = f"{address}{carried} is {what}"
        else:
            said = f"{host.name} resolves to {address}{carried}, {what}"
        return (
            f"{said}: the egress proxy does not connect agents to internal networks; an owner can open a "
            "network with allow_networks under [egress] in config.toml"
        )

    async def resolve(self, host: Host, port: int) -> list[IPAddress]:
        """Every address of ``host`` (just its own for an IP literal), in resolver order.

        Raises UpstreamConnectError when the name does not resolve and UpstreamConnectTimeoutError
        when the resolver takes longer than ``resolve_timeout``.
        """
        if host.ip is not None:
            return [_unmapped(host.ip)]
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.resolve_timeout):
                infos = await loop.getaddrinfo(host.name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except TimeoutError as exc:
            raise UpstreamConnectTimeoutError(
                f"resolving {host.name} took longer than {self.resolve_timeout:g} s; check DNS, or retry later"
            ) from exc
        except (OSError, UnicodeError) as exc:
            raise UpstreamConnectError(f"{host.name} does not resolve: check the host name") from exc
        found: list[IPAddress] = []
        for family, _, _, _, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = _unmapped(ipaddress.ip_address(str(sockaddr[0]).partition("%")[0]))
            if address not in found:
                found.append(address)
        if not found:
            raise UpstreamConnectError(f"{host.name} has no IPv4 or IPv6 address: check the host name")
        return found
