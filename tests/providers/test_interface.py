"""The interface types and the registry of provider plugins."""

from __future__ import annotations

import pytest

import gatepass.providers as providers
from gatepass.errors import GatepassError, NotFoundError
from gatepass.model import UpstreamType
from gatepass.providers import BadRequest, Usage, get_provider
from tests.conftest import COMPILED


def test_public_names_are_pinned() -> None:
    assert sorted(providers.__all__) == [
        "BadRequest",
        "LlmRequest",
        "Provider",
        "Route",
        "RouteKind",
        "StreamMeter",
        "UNKNOWN_ROUTE",
        "Usage",
        "get_provider",
        "provider_types",
    ]


@pytest.mark.parametrize("kind", list(UpstreamType))
def test_every_upstream_type_has_a_provider(kind: UpstreamType) -> None:
    assert get_provider(kind).name == kind.value
    assert get_provider(kind.value) is get_provider(kind)


def test_an_unknown_type_is_refused_with_the_choices() -> None:
    with pytest.raises(NotFoundError, match="anthropic, github, http, openai"):
        get_provider("aws")


def test_usage_checks_its_numbers() -> None:
    usage = Usage(input_tokens=10, output_tokens=5, cache_write_tokens=7, cache_read_tokens=3, cache_write_1h_tokens=2)
    assert usage.prompt_tokens == 20
    for bad in ({"input_tokens": -1}, {"cache_read_tokens": -3}):
        with pytest.raises(ValueError, match="whole number"):
            Usage(**{"input_tokens": 1, "output_tokens": 1, **bad})
    if COMPILED:  # the compiled class checks the declared int itself: a float is refused, a bool is its int
        with pytest.raises(TypeError):
            Usage(input_tokens=1, output_tokens=1.5)  # type: ignore[arg-type]
        assert type(Usage(1, 1, cache_read_tokens=True).cache_read_tokens) is int
    else:
        for bad in ({"output_tokens": 1.5}, {"cache_read_tokens": True}):
            with pytest.raises(ValueError, match="whole number"):
                Usage(**{"input_tokens": 1, "output_tokens": 1, **bad})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache_write_1h_tokens"):
        Usage(1, 1, cache_write_tokens=1, cache_write_1h_tokens=2)


def test_bad_request_is_a_gatepass_error_with_a_code() -> None:
    exc = BadRequest("invalid_json", "the body\nis not JSON")
    assert isinstance(exc, GatepassError)
    assert (exc.code, exc.status, exc.message) == ("invalid_json", 400, "the body is not JSON")
