"""The generic provider for ``github`` and ``http`` upstreams: every route is known and costs nothing.

Such upstreams are plain HTTP APIs: grants narrow them by method and path, nothing is metered, and no
body is read. Refusals use a small JSON shape with GitHub's ``message`` field, which GitHub clients
show, and the reason code beside it.
"""

from __future__ import annotations

import json
from typing import Final

from gatepass.providers.base import NoUsageMeter
from gatepass.providers.interface import LlmRequest, Provider, Route, RouteKind, StreamMeter, Usage

__all__ = ["GithubProvider", "HttpProvider"]

_ANY: Final = Route(RouteKind.OTHER, known=True, metered=False, model_in_body=False)


class HttpProvider(Provider):
    """A pass-through provider for ``http`` upstreams."""

    name = "http"

    def route(self, method: str, path: str) -> Route:
        return _ANY

    def parse(self, route: Route, body: bytes) -> LlmRequest:
        return LlmRequest(
            model=None, max_output_tokens=None, stream=False, wants_usage_chunk=False, input_bytes=len(body)
        )

    def usage_from_body(self, route: Route, body: bytes) -> Usage | None:
        return None

    def stream_meter(self, route: Route, req: LlmRequest) -> StreamMeter:
        return NoUsageMeter()

    def error_body(self, status: int, code: str, message: str) -> bytes:
        return json.dumps({"message": message, "code": code, "status": str(status)}, separators=(",", ":")).encode()


class GithubProvider(HttpProvider):
    """The same pass-through provider, for ``github`` upstreams."""

    name = "github"
