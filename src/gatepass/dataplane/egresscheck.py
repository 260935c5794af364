"""The egress proxy's checks as pure functions: who asks, where to, and whether it may go there.

Nothing here does I/O, so each check is a table of cases in its tests. A check returns its value or
a :class:`~gatepass.dataplane.exchange.Denial` (status, reason code, one sentence that says what to
do); :mod:`gatepass.dataplane.egress` resolves, connects, audits and answers.

Reason codes mirror :mod:`gatepass.policy.decision` where one exists (``key_revoked``,
``agent_suspended``, ``source_not_allowed`` ...); credential problems answer 407 so that proxy
clients know to send other credentials.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final

from gatepass.dataplane.exchange import Denial
from gatepass.dataplane.forward import HOP_BY_HOP, connection_tokens
from gatepass.dataplane.http import IncomingRequest
from gatepass.dataplane.parts import DigestFn
from gatepass.dataplane.state import RuntimeState
from gatepass.model import Agent, EgressRule, LiveKey, PolicyMode
from gatepass.netguard import DEFAULT_PORTS, Host, HostPattern, parse_host, parse_pattern
from gatepass.policy.decision import Reason, check_key

__all__ = [
    "EgressDecision",
    "Target",
    "authenticate",
    "decide",
    "forward_headers",
    "parse_absolute_target",
    "parse_connect_target",
    "response_headers",
]

Headers = list[tuple[bytes, bytes]]

_KEY_STATES: Final = frozenset({Reason.KEY_REVOKED, Reason.KEY_EXPIRED, Reason.KEY_USED_UP})  # answered 407
_DROP_UP: Final = HOP_BY_HOP | {b"content-length", b"expect"}  # framing the proxy sets; it sends the body whole
_HOW: Final = "set HTTP_PROXY and HTTPS_PROXY to http://AGENT:KEY@HOST:PORT (the gatepass key as the password)"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a proxy request goes; ``path`` is the origin-form target of a forwarded request (b"" for CONNECT)."""

    host: Host
    port: int
    path: bytes = b""

    @property
    def label(self) -> str:
        return self.host.label(self.port)


def _bad(message: str) -> Denial:
    return Denial(400, "bad_target", message)


def _port(text: str) -> int | None:
    if not text.isdigit() or not text.isascii() or len(text) > 5:
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


def _host_port(authority: str, default: int | None) -> tuple[Host, int] | Denial:
    """``host[:port]`` (an IPv6 host in brackets); without a port, ``default`` (None: a port is required)."""
    if authority.startswith("["):
        end = authority.find("]")
        host_text, rest = authority[: end + 1], authority[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            return _bad(f"{authority[:100]!r} is not host:port (an IPv6 host goes in brackets: [2001:db8::1]:443)")
        port_text = rest[1:] if rest else None
    else:
        host_text, sep, port_text_found = authority.rpartition(":")
        host_text, port_text = (host_text, port_text_found) if sep else (authority, None)
    if port_text is None:
        if default is None:
            return _bad(f"CONNECT needs host:port, e.g. CONNECT {authority[:100]}:443; got no port")
        port = default
    else:
        found = _port(port_text)
        if found is None:
            return _bad(f"the port {port_text[:20]!r} is not a number from 1 to 65535")
        port = found
    try:
        return parse_host(host_text), port
    except ValueError as exc:
        return _bad(str(exc))


def parse_connect_target(target: bytes) -> Target | Denial:
    """The ``host:port`` of a CONNECT request (authority-form: no scheme, user, path or query)."""
    text = target.decode("latin-1")
    if any(c in text for c in "/@?#") or not text:
        return _bad("CONNECT takes host:port only (no scheme, user, path or query), e.g. api.example.com:443")
    found = _host_port(text, None)
    return found if isinstance(found, Denial) else Target(*found)


def parse_absolute_target(target: bytes, host_header: bytes | None) -> Target | Denial:
    """An absolute-form ``http://host[:port]/path?query`` and the ``Host`` header, which must name the same."""
    scheme, sep, rest = target.partition(b"://")
    scheme = scheme.lower()
    if not sep or not rest:
        return _bad("a proxy request names a whole URL, e.g. GET http://example.com/ HTTP/1.1")
    if scheme == b"https":
        return Denial(
            400,
            "use_connect",
            "https:// URLs go through a CONNECT tunnel: set HTTPS_PROXY (not only HTTP_PROXY) for the client",
        )
    if scheme != b"http":
        return _bad(f"only http:// URLs are forwarded (and https through CONNECT), not {scheme[:20]!r}")
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?"), rest.find(b"#")) if i >= 0), default=len(rest))
    authority, path = rest[:cut].decode("latin-1"), rest[cut:].partition(b"#")[0]
    if "@" in authority:
        return _bad("a URL with a user or password is not forwarded: send credentials in headers")
    found = _host_port(authority, 80)
    if isinstance(found, Denial):
        return found
    host, port = found
    if host_header is not None:
        named = _host_port(host_header.decode("latin-1"), 80)
        if isinstance(named, Denial) or named != (host, port):
            return Denial(400, "host_mismatch", f"the Host header does not name {host.label(port)}, the URL's host")
    return Target(host, port, path if path.startswith(b"/") else b"/" + path)


def _credentials(request: IncomingRequest) -> tuple[str, str] | Denial:
    """(user, key) from ``Proxy-Authorization: Basic base64(user:key)``."""
    values = [v for n, v in request.headers if n == b"proxy-authorization"]
    if not values:
        return Denial(407, "key_missing", f"no gatepass key: {_HOW}")
    scheme, _, token = values[0].strip().partition(b" ")
    if len(values) > 1 or scheme.lower() != b"basic":
        return Denial(407, "key_malformed", f"send one Proxy-Authorization: Basic header: {_HOW}")
    try:
        user, sep, key = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        sep = ""
    if not sep:
        return Denial(407, "key_malformed", f"Proxy-Authorization is not base64 of user:key: {_HOW}")
    return user, key


def authenticate(
    request: IncomingRequest, state: RuntimeState, digest: DigestFn, now: datetime
) -> tuple[Agent, LiveKey] | Denial:
    """The agent and key behind the request's proxy credentials, checked as the gateway checks keys."""
    found = _credentials(request)
    if isinstance(found, Denial):
        return found
    user, presented = found
    hashed = digest(presented)
    if hashed is None:
        return Denial(407, "key_malformed", "the password is not a gatepass key (bad format or checksum): check it")
    record = state.keys.get(hashed)
    agent = None if record is None else state.agents.get(record.agent_id)
    if record is None or agent is None:
        return Denial(407, "key_unknown", "this gatepass key is not known here: ask for a new one")
    denied = check_key(agent, record, now, request.client_ip)
    if denied is not None and denied.reason in _KEY_STATES:
        return Denial(407, denied.reason.value, denied.sentence)
    if user and user != agent.name and user in state.agent_ids:
        return Denial(407, "agent_mismatch", f"the key is not {user}'s: use {user}'s own key, or its name")
    if denied is not None:
        return Denial(403, denied.reason.value, denied.sentence)  # suspended agent, or a source outside --cidr
    return agent, record


@dataclass(frozen=True, slots=True)
class EgressDecision:
    """The allowlist's answer. ``report_only``: allowed only because the agent is in report mode;
    ``reason`` then names what enforcement would have denied."""

    allowed: bool
    reason: str
    sentence: str
    rule_id: str | None = None
    report_only: bool = False


@lru_cache(maxsize=4096)
def _pattern(text: str) -> HostPattern | None:
    try:
        return parse_pattern(text)
    except ValueError:
        return None  # a rule the store holds but this version cannot read matches nothing (deny)


def decide(agent: Agent, rules: Sequence[EgressRule], target: Target) -> EgressDecision:
    """May ``agent`` reach ``target``? Deny by default; report mode lets a miss through, marked."""
    reason = "host_not_allowed"
    for rule in rules:
        pattern = _pattern(rule.host)
        if pattern is None or not pattern.matches(target.host):
            continue
        if target.port in (rule.ports or DEFAULT_PORTS):
            return EgressDecision(True, "allowed", f"allowed by egress rule {rule.id}", rule.id)
        reason = "port_not_allowed"
    if reason == "port_not_allowed":
        sentence = (
            f"agent {agent.name} may reach {target.host.name}, but not on port {target.port}; allow it with "
            f"gatepass egress allow {agent.name} {target.label}"
        )
    else:
        sentence = (
            f"agent {agent.name} may not reach {target.host.name}; its owner can allow it with "
            f"gatepass egress allow {agent.name} {target.label}"
        )
    if agent.mode is PolicyMode.REPORT:
        return EgressDecision(True, reason, f"report-only: would deny: {sentence}", report_only=True)
    return EgressDecision(False, reason, sentence)


def forward_headers(headers: Headers) -> Headers:
    """The request's headers as they go upstream: no proxy credentials, no hop-by-hop fields."""
    named = connection_tokens(headers)
    return [(n, v) for n, v in headers if n not in _DROP_UP and n not in named]


def response_headers(headers: Headers, request_id: bytes) -> Headers:
    """The upstream's headers as they go back (Content-Length kept for framing), plus the request id."""
    named = connection_tokens(headers)
    out = [(n, v) for n, v in headers if n not in HOP_BY_HOP and n not in named]
    out.append((b"x-gatepass-request-id", request_id))
    return out
