"""Bytes on the wire shared by the server and the upstream client.

Status lines, the statuses that carry no body, the checks that keep a header from splitting a
message (a CR or LF in a name or value would let a caller inject headers), and the strict reading
of ``Content-Length`` that both directions use; and how their protocol classes are handed to the
event loop. Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Final, cast

__all__ = [
    "FRAMING_HEADERS",
    "Headers",
    "body_allowed",
    "check_header",
    "encode_headers",
    "lower_name",
    "parse_content_length",
    "protocol_factory",
    "reason_phrase",
    "status_line",
]

Headers = list[tuple[bytes, bytes]]
"""Header fields in order, repeated names kept; names lowercase where this package produced them."""

FRAMING_HEADERS: Final = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length"})
"""Headers that frame a message on one connection: the HTTP layer writes them, never its caller."""

_REASONS: Final[dict[int, str]] = {s.value: s.phrase for s in HTTPStatus}
_STATUS_LINES: Final[dict[int, bytes]] = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, phrase.encode("ascii")) for code, phrase in _REASONS.items()
}
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NAMES: dict[bytes, bytes] = {}  # header name as given -> lowercase, for names already checked
_NAMES_MAX: Final = 4096


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status``, or ``""`` for a code without one."""
    return _REASONS.get(status, "")


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n`` for a status code from 100 to 999."""
    line = _STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise ValueError(f"HTTP status {status} is out of range: use a code from 100 to 999")
        line = b"HTTP/1.1 %d \r\n" % status
    return line


def body_allowed(status: int) -> bool:
    """False for the statuses whose responses never have a body: 1xx, 204 and 304."""
    return status >= 200 and status != 204 and status != 304


def lower_name(name: bytes) -> bytes:
    """The lowercase form of a header name, after checking that it is a token (cached)."""
    lower = _NAMES.get(name)
    if lower is None:
        if _TOKEN.fullmatch(name) is None:
            raise ValueError(f"invalid HTTP header name {name[:40]!r}: use a token without spaces, colons or CR/LF")
        lower = name.lower()
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[name] = lower
    return lower


def check_header(name: bytes, value: bytes) -> None:
    """Refuse a header field that would break the message apart (a non-token name; CR, LF or NUL)."""
    lower_name(name)
    if b"\r" in value or b"\n" in value or b"\0" in value:
        # The value is not shown: header values carry credentials.
        raise ValueError(f"invalid value for HTTP header {name[:40]!r}: it contains CR, LF or NUL")


def encode_headers(
    buf: bytearray, headers: Sequence[tuple[bytes, bytes]], skip: frozenset[bytes], watch: bytes = b""
) -> bool:
    """Append ``name: value\\r\\n`` lines to ``buf``, checking each field and leaving out names in ``skip``.

    Returns whether a header named ``watch`` (lowercase) was written.
    """
    start = len(buf)
    lines = 0
    seen = False
    for name, value in headers:
        lower = _NAMES.get(name) or lower_name(name)
        if lower in skip:
            continue
        if lower == watch:
            seen = True
        buf += name
        buf += b": "
        buf += value
        buf += b"\r\n"
        lines += 1
    # One scan of the block instead of three per value: a CR, LF or NUL inside a value shows as
    # more line ends than lines written.
    if buf.count(b"\n", start) != lines or buf.count(b"\r", start) != lines or buf.find(b"\0", start) >= 0:
        for name, value in headers:
            check_header(name, value)
    return seen


def parse_content_length(value: bytes) -> int | None:
    """The length in a ``Content-Length`` value: digits only (no sign, no list), else None."""
    value = value.strip(b" \t")
    if not value or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def protocol_factory(factory: Callable[[], object]) -> Callable[[], asyncio.BaseProtocol]:
    """``factory`` typed as the event loop wants it.

    The connection classes are protocols by their methods, not ``asyncio.Protocol`` subclasses (a
    plain class is a native one in the compiled build); the loop only calls those methods."""
    return cast("Callable[[], asyncio.BaseProtocol]", factory)
