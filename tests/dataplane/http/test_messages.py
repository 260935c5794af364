"""IncomingRequest, ServerLimits and the default error body."""

from __future__ import annotations

import json

import pytest

from gatepass.dataplane.http.messages import IncomingRequest, ServerLimits, default_error_body

SECRET = "sk-test-" + "5" * 24


def make_request() -> IncomingRequest:
    return IncomingRequest(
        method="POST",
        target=b"/v1/messages?key=" + SECRET.encode(),
        path="/v1/messages",
        query=b"key=" + SECRET.encode(),
        headers=[(b"x-api-key", SECRET.encode()), (b"accept", b"a"), (b"accept", b"b")],
        body=b'{"prompt": "' + SECRET.encode() + b'"}',
        client_ip="127.0.0.1",
        client_port=5000,
        http_version="1.1",
        keep_alive=True,
    )


def test_header_gives_the_first_value() -> None:
    request = make_request()
    assert request.header(b"accept") == b"a"
    assert request.header(b"x-api-key") == SECRET.encode()
    assert request.header(b"nope") is None


def test_repr_shows_no_header_value_query_or_body() -> None:
    text = repr(make_request())
    assert SECRET not in text
    assert "POST /v1/messages" in text and "accept,x-api-key" in text and "127.0.0.1:5000" in text


def test_limits_defaults() -> None:
    limits = ServerLimits()
    assert limits.max_body_bytes == 32 * 1024 * 1024
    assert limits.max_header_bytes == 64 * 1024
    assert (limits.header_timeout, limits.body_timeout, limits.keepalive_timeout) == (30.0, 60.0, 75.0)
    assert limits.max_requests_per_connection is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_body_bytes": -1},
        {"max_header_bytes": -1},
        {"header_timeout": 0},
        {"body_timeout": -1.0},
        {"keepalive_timeout": 0},
        {"max_requests_per_connection": 0},
    ],
)
def test_limits_refuse_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="ServerLimits"):
        ServerLimits(**kwargs)  # type: ignore[arg-type]


def test_default_error_body() -> None:
    headers, body = default_error_body("/x", 413, "body_too_large", "too big")
    assert headers == [(b"content-type", b"application/json")]
    assert json.loads(body) == {"error": {"type": "body_too_large", "message": "too big"}}
