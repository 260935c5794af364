"""Forwarding: which headers go upstream (with the credential), which come back.

The credential is added here and only here, after every check passed, for the upstream's own
origin; whatever the agent sent under the credential's header name, or under any header that
could carry a key, is dropped first, so no agent header can replace it. Hop-by-hop headers (and
those named in ``Connection``) are not forwarded in either direction, as RFC 9110 asks of a proxy.
"""

from __future__ import annotations

from typing import Final

from gatepass.dataplane.state import Credential

__all__ = [
    "HOP_BY_HOP",
    "body_encoded",
    "connection_tokens",
    "downstream_headers",
    "forwarded_headers",
    "is_event_stream",
    "upstream_headers",
    "with_credential",
]

Headers = list[tuple[bytes, bytes]]

#: Never forwarded, in either direction (RFC 9110), by the gateway or the egress proxy.
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Never forwarded upstream: the gatepass key's headers, framing the gateway sets itself, and
# encodings the gateway could not meter.
_DROP_UP: Final = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"x-api-key",
    b"authorization",
    b"accept-encoding",
    b"cookie",
    b"expect",
}
_DROP_DOWN: Final = HOP_BY_HOP | {b"content-length", b"set-cookie"}


def connection_tokens(headers: Headers) -> set[bytes]:
    """Header names listed in Connection: hop-by-hop too (RFC 9110)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return tokens


def forwarded_headers(headers: Headers, credential_name: bytes | None = None) -> Headers:
    """The agent's headers that go upstream (what the leak guard scans), before the gateway adds its own."""
    named = connection_tokens(headers)
    return [
        (n, v)
        for n, v in headers
        if n not in _DROP_UP and n not in named and n != credential_name and not n.startswith(b"x-gatepass-")
    ]


def with_credential(forwarded: Headers, credential: Credential | None) -> Headers:
    """``forwarded`` (from :func:`forwarded_headers`, extended in place) with what the gateway adds."""
    forwarded.append((b"accept-encoding", b"identity"))
    if credential is not None:
        forwarded.append(credential.header())
    return forwarded


def upstream_headers(headers: Headers, credential: Credential | None) -> Headers:
    return with_credential(forwarded_headers(headers, credential.name if credential else None), credential)


def body_encoded(headers: Headers) -> bool:
    """The body is compressed (or otherwise encoded): neither metering nor the leak guard could read it."""
    for name, value in headers:
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return True
    return False


def downstream_headers(headers: Headers, request_id: bytes) -> Headers:
    named = connection_tokens(headers)
    out = [(n, v) for n, v in headers if n not in _DROP_DOWN and n not in named]
    out.append((b"x-gatepass-request-id", request_id))
    return out


def is_event_stream(headers: Headers) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"text/event-stream"
    return False
