"""The generic provider of github and http upstreams."""

from __future__ import annotations

import json

import pytest

from gatepass.providers import Route, RouteKind
from gatepass.providers.http import GithubProvider, HttpProvider


@pytest.mark.parametrize("provider", [HttpProvider(), GithubProvider()])
def test_generic_provider_knows_every_route_and_meters_nothing(provider: HttpProvider) -> None:
    route = provider.route("DELETE", "/repos/acme/docs/issues/1?x=1")
    assert route == Route(RouteKind.OTHER, known=True, metered=False, model_in_body=False)
    parsed = provider.parse(route, b"not even json")
    assert (parsed.model, parsed.max_output_tokens, parsed.stream, parsed.input_bytes) == (None, None, False, 13)
    assert provider.prepare(route, parsed, b"abc") == b"abc"
    assert provider.usage_from_body(route, b'{"usage": {"input_tokens": 1}}') is None
    meter = provider.stream_meter(route, parsed)
    assert meter.feed(b"data: x\n\n") == b"data: x\n\n" and meter.flush() == b""
    assert meter.finish() is None and meter.complete
    assert json.loads(provider.error_body(404, "path_not_allowed", "No.")) == {
        "message": "No.",
        "code": "path_not_allowed",
        "status": "404",
    }
