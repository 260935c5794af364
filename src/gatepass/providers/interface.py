"""The provider plugin interface: pure functions over bytes that the gateway drives event by event.

A provider knows one upstream API's wire format and nothing about the network::

    route(method, path)          -> Route        which request is this? does it cost money?
    parse(route, body)           -> LlmRequest   model, output cap, stream flags (BadRequest if malformed)
    prepare(route, req, body)    -> bytes        the body to send upstream (e.g. ask for a usage chunk)
    usage_from_body(route, body) -> Usage|None   usage of a non-streamed response
    stream_meter(route, req)     -> StreamMeter  fed the streamed response chunk by chunk
    error_body(status, code, msg)-> bytes        a refusal in the provider's own error shape

Nothing here does I/O, so every part can be tested by feeding it bytes.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from gatepass.errors import GatepassError

__all__ = [
    "UNKNOWN_ROUTE",
    "BadRequest",
    "LlmRequest",
    "Provider",
    "Route",
    "RouteKind",
    "StreamMeter",
    "Usage",
]


class RouteKind(enum.StrEnum):
    """What an upstream route is, across providers."""

    MESSAGES = "messages"
    COUNT_TOKENS = "count_tokens"
    MODELS = "models"
    CHAT_COMPLETIONS = "chat_completions"
    RESPONSES = "responses"
    EMBEDDINGS = "embeddings"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Route:
    """The provider's reading of a method and path.

    ``known``: the plugin understands this route (an unknown one needs a grant that names its path).
    ``metered``: it costs money, so it needs a price and a budget reservation before it is forwarded.
    ``model_in_body``: the JSON body names the model (``parse`` reads it).
    """

    kind: RouteKind
    known: bool
    metered: bool = False
    model_in_body: bool = False


UNKNOWN_ROUTE = Route(RouteKind.OTHER, known=False)


@dataclass(frozen=True, slots=True)
class LlmRequest:
    """What the gateway needs to know of a request body before forwarding it.

    ``max_output_tokens`` is the most output the request may produce (already multiplied by the number
    of choices asked for), or None when the request sets no cap (the model's own maximum applies).
    ``wants_usage_chunk``: an OpenAI chat stream whose client asked for the final usage chunk.
    ``remote_input``: the body refers to content the provider fetches or keeps (files, URLs, earlier
    responses, server-side tools), so ``input_bytes`` does not bound the input tokens.
    ``modifiers``: request options known to change the price that a price table entry does not cover
    (e.g. ``speed=fast``, ``service_tier=priority``); a gateway that cannot price them should refuse.
    """

    model: str | None
    max_output_tokens: int | None
    stream: bool
    wants_usage_chunk: bool
    input_bytes: int
    remote_input: bool = False
    modifiers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a response consumed, as the provider reported them.

    ``input_tokens`` excludes cache reads and cache writes; ``cache_write_1h_tokens`` is the part of
    ``cache_write_tokens`` written with the longer (1-hour) lifetime, which costs more.
    """

    input_tokens: int
    output_tokens: int
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_1h_tokens: int = 0

    def __post_init__(self) -> None:
        # The usual case at once; the checks below say what is wrong.
        i, o, w, r, h = (
            self.input_tokens,
            self.output_tokens,
            self.cache_write_tokens,
            self.cache_read_tokens,
            self.cache_write_1h_tokens,
        )
        if type(i) is int and type(o) is int and type(w) is int and type(r) is int and type(h) is int:
            if i >= 0 and o >= 0 and r >= 0 and 0 <= h <= w:
                return
        for name in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Usage.{name} must be a whole number of tokens, not {value!r}")
        extra = self.cache_write_1h_tokens
        if isinstance(extra, bool) or not isinstance(extra, int) or not 0 <= extra <= self.cache_write_tokens:
            raise ValueError("Usage.cache_write_1h_tokens must be between 0 and cache_write_tokens")

    @property
    def prompt_tokens(self) -> int:
        """All input tokens: plain, cache writes and cache reads."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens


class BadRequest(GatepassError):
    """A malformed client request: answer 400 with ``code`` and the one-line ``message``.

    The message says what to fix and never quotes the body.
    """

    status: ClassVar[int] = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class StreamMeter(ABC):
    """Reads usage from a streamed response while passing its bytes on.

    ``feed`` returns the bytes to send to the client now; ``flush`` returns bytes still held back when
    the stream ends (an incomplete trailing event); ``finish`` returns the usage. When the stream did
    not reach its natural end, ``complete`` is False and ``finish`` returns the best usage known so far
    (None when the provider reported none before the cut: settle conservatively then).
    Use a meter only on a successful ``text/event-stream`` response; read other bodies whole.
    """

    @abstractmethod
    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes:
        return b""

    @abstractmethod
    def finish(self) -> Usage | None: ...

    @property
    @abstractmethod
    def complete(self) -> bool: ...


class Provider(ABC):
    """One upstream API's wire format. Implementations hold no per-request state."""

    name: ClassVar[str]

    @abstractmethod
    def route(self, method: str, path: str) -> Route:
        """Classify a request; ``path`` is the part after ``/{upstream}`` (any query string is ignored)."""

    @abstractmethod
    def parse(self, route: Route, body: bytes) -> LlmRequest:
        """Read the request body of a metered or model-bearing route; BadRequest when it is malformed."""

    def prepare(self, route: Route, req: LlmRequest, body: bytes) -> bytes:
        """The body to send upstream; by default the same bytes object."""
        return body

    @abstractmethod
    def usage_from_body(self, route: Route, body: bytes) -> Usage | None:
        """Usage of a non-streamed JSON response; None when the body reports none (e.g. an error)."""

    @abstractmethod
    def stream_meter(self, route: Route, req: LlmRequest) -> StreamMeter:
        """A fresh meter for one streamed response to ``req``."""

    @abstractmethod
    def error_body(self, status: int, code: str, message: str) -> bytes:
        """A gatepass refusal in this provider's error shape, carrying ``code`` where SDKs expose it."""
