"""Provider plugins: how each upstream API's requests, usage and errors look on the wire.

``get_provider(upstream_type)`` returns the plugin for an upstream type (``anthropic``, ``openai``,
``github``, ``http``); every plugin implements :class:`Provider` (see ``interface``).
"""

from __future__ import annotations

from typing import Final

from gatepass.errors import NotFoundError
from gatepass.providers.anthropic import AnthropicProvider
from gatepass.providers.http import GithubProvider, HttpProvider
from gatepass.providers.interface import (
    UNKNOWN_ROUTE,
    BadRequest,
    LlmRequest,
    Provider,
    Route,
    RouteKind,
    StreamMeter,
    Usage,
)
from gatepass.providers.openai import OpenAIProvider

__all__ = [
    "UNKNOWN_ROUTE",
    "BadRequest",
    "LlmRequest",
    "Provider",
    "Route",
    "RouteKind",
    "StreamMeter",
    "Usage",
    "get_provider",
    "provider_types",
]

_PROVIDERS: Final[dict[str, Provider]] = {
    p.name: p for p in (AnthropicProvider(), OpenAIProvider(), GithubProvider(), HttpProvider())
}


def get_provider(upstream_type: str) -> Provider:
    """The plugin for an upstream type. Plugins hold no state, so one instance serves every request."""
    try:
        return _PROVIDERS[str(upstream_type)]
    except KeyError:
        raise NotFoundError(
            f"no provider plugin for upstream type {str(upstream_type)!r}: use one of {', '.join(provider_types())}"
        ) from None


def provider_types() -> tuple[str, ...]:
    return tuple(sorted(_PROVIDERS))
