"""The control plane's HTTP API (aiohttp): health, metrics, change notification, live spend.

Everything but ``/healthz`` needs ``Authorization: Bearer <admin token>`` (the token is in the
home's ``admin.token``). Nothing here is reachable from the data plane's listener.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from gatepass.sensitive import Secret

if TYPE_CHECKING:
    from gatepass.control.serve import GatewayService

__all__ = ["make_admin_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SERVICE = web.AppKey("service", object)


def _service(request: web.Request) -> GatewayService:
    return request.app[_SERVICE]  # type: ignore[return-value]


def _require_token(token: Secret) -> Middleware:
    expected = f"Bearer {token.reveal()}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz":
            return await handler(request)
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": {"type": "unauthorized", "message": "send Authorization: Bearer <the home's admin.token>"}},
                status=401,
            )
        return await handler(request)

    return check


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _metrics(request: web.Request) -> web.Response:
    body = _service(request).metrics.render()
    return web.Response(body=body, headers={"content-type": "text/plain; version=0.0.4; charset=utf-8"})


async def _changes(request: web.Request) -> web.Response:
    applied = await _service(request).refresh()
    return web.json_response({"applied": applied, "seq": _service(request).state.seq})


async def _spend(request: web.Request) -> web.Response:
    return web.json_response(_service(request).spend_report())


async def _status(request: web.Request) -> web.Response:
    return web.json_response(_service(request).status())


def make_admin_app(service: GatewayService, token: Secret) -> web.Application:
    app = web.Application(middlewares=[_require_token(token)])
    app[_SERVICE] = service
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/healthz", _health),
        ("GET", "/metrics", _metrics),
        ("POST", "/v1/changes", _changes),
        ("GET", "/v1/spend", _spend),
        ("GET", "/v1/status", _status),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app
