"""Status lines, header checks and Content-Length parsing shared by server and client."""

from __future__ import annotations

import pytest

from gatepass.dataplane.http.wire import (
    FRAMING_HEADERS,
    body_allowed,
    check_header,
    encode_headers,
    lower_name,
    parse_content_length,
    reason_phrase,
    status_line,
)


def test_status_lines() -> None:
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(429) == b"HTTP/1.1 429 Too Many Requests\r\n"
    assert status_line(599) == b"HTTP/1.1 599 \r\n"
    assert reason_phrase(404) == "Not Found" and reason_phrase(599) == ""
    for bad in (99, 1000):
        with pytest.raises(ValueError, match="out of range"):
            status_line(bad)


@pytest.mark.parametrize(("status", "allowed"), [(100, False), (101, False), (200, True), (204, False), (304, False)])
def test_body_allowed(status: int, allowed: bool) -> None:
    assert body_allowed(status) is allowed


def test_encode_headers_skips_framing_and_reports_a_watched_name() -> None:
    buf = bytearray()
    seen = encode_headers(
        buf, [(b"Host", b"h"), (b"Content-Length", b"1"), (b"X-A", b"1")], FRAMING_HEADERS, watch=b"host"
    )
    assert seen is True
    assert bytes(buf) == b"Host: h\r\nX-A: 1\r\n"
    assert encode_headers(bytearray(), [(b"x", b"y")], FRAMING_HEADERS, watch=b"host") is False


@pytest.mark.parametrize("value", [b"a\r\nb", b"a\nb", b"a\rb", b"a\x00b", b"\r\n"])
def test_values_that_would_split_a_message_are_refused(value: bytes) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL") as info:
        encode_headers(bytearray(), [(b"ok", b"fine"), (b"x-key", value)], FRAMING_HEADERS)
    assert value.decode("latin-1") not in str(info.value).replace("x-key", "")
    with pytest.raises(ValueError):
        check_header(b"x-key", value)


@pytest.mark.parametrize("name", [b"", b"a b", b"a:b", b"a\r\nb", b"\xff"])
def test_names_must_be_tokens(name: bytes) -> None:
    with pytest.raises(ValueError, match="header name"):
        lower_name(name)


def test_lower_name_caches() -> None:
    assert lower_name(b"X-Api-Key") == b"x-api-key"
    assert lower_name(b"X-Api-Key") == b"x-api-key"


@pytest.mark.parametrize(
    ("value", "length"),
    [(b"0", 0), (b"42", 42), (b" 7 ", 7), (b"", None), (b"-1", None), (b"+1", None), (b"1,1", None), (b"1e3", None)],
)
def test_parse_content_length(value: bytes, length: int | None) -> None:
    assert parse_content_length(value) == length
