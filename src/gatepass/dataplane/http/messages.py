"""What the server hands to a handler, and the knobs that bound what a client may send.

:class:`IncomingRequest` is one fully received request (its body already read and de-chunked);
:class:`ServerLimits` bounds sizes and waits; :data:`ErrorBody` shapes the body of the errors the
server answers by itself (400, 408, 413, 431, ...) so the gateway can make them look like the
provider's own errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from gatepass.dataplane.http.wire import Headers

__all__ = ["ErrorBody", "IncomingRequest", "ServerLimits", "default_error_body"]

ErrorBody = Callable[[str, int, str, str], tuple[Headers, bytes]]
"""``error_body(path, status, code, message) -> (headers, body)`` for an error the server answers itself.

``path`` is the request's path when it was read ("" when the request line itself was unreadable),
``code`` a machine-readable reason such as ``body_too_large``, ``message`` one human sentence.
The server adds ``content-length`` and ``connection: close``.
"""


class IncomingRequest:
    """One request as received, with its whole body.

    ``target`` is the request target exactly as sent; ``path`` is its path part, not percent-decoded
    (for an absolute-form target ``http://host/p?q`` the path is ``/p``); ``query`` the bytes after
    ``?``. Header names are lowercased, values are as received, order and repeats are kept.
    ``keep_alive`` says whether the client allows the connection to serve another request.

    A plain class: one is made per request (see :class:`~gatepass.dataplane.exchange.Exchange`).
    """

    __slots__ = (
        "body",
        "client_ip",
        "client_port",
        "headers",
        "http_version",
        "keep_alive",
        "method",
        "path",
        "query",
        "target",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        path: str,
        query: bytes,
        headers: Headers,
        body: bytes,
        client_ip: str,
        client_port: int,
        http_version: str,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.client_ip = client_ip
        self.client_port = client_port
        self.http_version = http_version
        self.keep_alive = keep_alive

    def with_target(self, target: bytes, path: str, query: bytes) -> IncomingRequest:
        """The same request with another target (and its path and query)."""
        return IncomingRequest(
            self.method,
            target,
            path,
            query,
            self.headers,
            self.body,
            self.client_ip,
            self.client_port,
            self.http_version,
            self.keep_alive,
        )

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (give it lowercase), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        # Header values and bodies carry credentials and prompts: never print them.
        names = ",".join(sorted({k.decode("latin-1") for k, _ in self.headers}))
        return (
            f"IncomingRequest({self.method} {self.path} HTTP/{self.http_version} from "
            f"{self.client_ip}:{self.client_port}, headers=[{names}], body={len(self.body)} bytes)"
        )


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Sizes and waits a client must stay within; each breach is answered by the server and closes.

    * ``max_body_bytes``: a larger body gets 413, as soon as Content-Length announces it, or as
      soon as a chunked body passes it.
    * ``max_header_bytes``: request line plus headers; larger gets 431.
    * ``header_timeout``: seconds to receive a whole request head (slowloris); then 408.
    * ``body_timeout``: seconds between two pieces of a body; then 408.
    * ``keepalive_timeout``: seconds an idle keep-alive connection stays open.
    * ``max_requests_per_connection``: close after this many requests (None: no limit).
    """

    max_body_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 30.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    max_requests_per_connection: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_header_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"ServerLimits.{name} must be 0 or more")
        for name in ("header_timeout", "body_timeout", "keepalive_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ServerLimits.{name} must be a number of seconds above 0")
        if self.max_requests_per_connection is not None and self.max_requests_per_connection < 1:
            raise ValueError("ServerLimits.max_requests_per_connection must be 1 or more, or None")


def default_error_body(path: str, status: int, code: str, message: str) -> tuple[Headers, bytes]:
    """``{"error": {"type": code, "message": message}}`` as JSON."""
    body = json.dumps({"error": {"type": code, "message": message}}).encode()
    return [(b"content-type", b"application/json")], body
