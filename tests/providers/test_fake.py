"""The in-memory fake provider that tests of the gateway use."""

from __future__ import annotations

import json

import pytest

from gatepass.providers import BadRequest, Route, RouteKind, Usage
from gatepass.providers.fake import FakeProvider


def test_fake_provider_round_trip() -> None:
    fake = FakeProvider()
    route = fake.route("POST", "/v1/generate")
    assert route.metered and route.model_in_body
    assert fake.route("POST", "/v1/free") == Route(RouteKind.OTHER, known=True)
    assert fake.route("GET", "/v1/generate").known is False
    req = fake.parse(route, b'{"model": "m", "max_tokens": 10, "stream": true}')
    assert (req.model, req.max_output_tokens, req.stream) == ("m", 10, True)
    body = b'{"usage": {"input_tokens": 3, "output_tokens": 5, "cache_read_tokens": 2}}'
    assert fake.usage_from_body(route, body) == Usage(3, 5, cache_read_tokens=2)
    meter = fake.stream_meter(route, req)
    stream = b'data: {"usage": {"input_tokens": 1, "output_tokens": 1}}\n\n'
    stream += b'data: {"usage": {"input_tokens": 3, "output_tokens": 9}}\n\ndata: [DONE]\n\n'
    assert meter.feed(stream) == stream
    assert (meter.finish(), meter.complete) == (Usage(3, 9), True)
    assert json.loads(fake.error_body(402, "budget_exhausted", "No money.")) == {
        "error": {"code": "budget_exhausted", "message": "No money.", "status": 402}
    }
    assert fake.calls == ["route", "route", "route", "parse", "usage_from_body", "stream_meter", "error_body"]


def test_fake_provider_can_fail_parsing() -> None:
    fake = FakeProvider(fail_parse=BadRequest("invalid_request", "no"))
    with pytest.raises(BadRequest, match="no"):
        fake.parse(fake.route("POST", "/v1/generate"), b"{}")
    with pytest.raises(BadRequest, match="model"):
        FakeProvider().parse(fake.route("POST", "/v1/generate"), b"{}")
