"""Helpers shared by the provider plugins: request JSON, usage numbers and base stream meters.

Request fields are checked strictly (a wrong type is the client's error, answered with BadRequest in
the provider's own wording); usage numbers from the upstream are read leniently (anything that is not a
non-negative integer counts as missing, and missing usage means "unknown", never zero). The two base
meters pass bytes through untouched: one watches the SSE events on the way, the other reports nothing.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, Final

import orjson

from gatepass.providers.interface import BadRequest, StreamMeter, Usage
from gatepass.providers.sse import SseEvent, SseParser

__all__ = [
    "NoUsageMeter",
    "RemoteScan",
    "SseWatchingMeter",
    "Wording",
    "count",
    "get_path",
    "load_json",
    "load_object",
    "opt_bool",
    "opt_positive_int",
    "opt_str",
]

# (field, expected) -> message, in the provider's own wording.
Wording = Callable[[str, str], str]


def load_json(body: bytes | str, *numbers_at: str) -> Any:
    """Parse a response body (or an SSE event's data); None when it is not JSON.

    Parsed by orjson, with :mod:`json` as the fallback for what orjson refuses (NaN, a byte order
    mark, UTF-16, ...), so the result is :func:`json.loads`' result. One difference is left: orjson
    reads an integer beyond 64 bits as a float. Give ``numbers_at``, the path of the object whose
    numbers the caller reads (e.g. ``"usage"``), to have that object exact too.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    else:
        if not numbers_at or not _has_wide_float(get_path(data, *numbers_at)):
            return data
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


#: orjson turns an integer literal outside the 64-bit range into a float of at least this size.
_WIDE: Final = float(2**63)
_MAX_DEPTH: Final = 100


def _has_wide_float(value: Any, depth: int = 0) -> bool:
    if type(value) is dict:
        values: Iterable[Any] = value.values()
    elif type(value) is list:
        values = value
    else:
        return type(value) is float and (value >= _WIDE or value <= -_WIDE)
    if depth > 4:
        return True  # not worth a look: let json parse it
    for item in values:
        kind = type(item)
        if kind is float:
            if item >= _WIDE or item <= -_WIDE:
                return True
        elif (kind is dict or kind is list) and _has_wide_float(item, depth + 1):
            return True
    return False


def load_object(body: bytes, wording: Wording, scan: RemoteScan | None = None) -> dict[str, Any]:
    """Parse a request body that must be a JSON object (without repeated keys), running ``scan`` on it."""
    if not body.strip():
        raise BadRequest("invalid_request", wording("body", "a JSON object (the request body is empty)"))
    data = _fast_object(body, scan)
    if data is not None:
        return data
    if scan is not None:
        scan.found = False  # the exact parse below scans every object again

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise _DuplicateKey
        if scan is not None:
            scan.check(obj)
        return obj

    try:
        parsed: object = json.loads(body, object_pairs_hook=build)
    except _DuplicateKey:
        # Two parsers could pick different values of a repeated key (a cheap model priced, a dear one served).
        raise BadRequest("invalid_request", wording("body", "JSON without repeated keys in an object")) from None
    except (ValueError, RecursionError):
        raise BadRequest("invalid_json", wording("body", "valid JSON (the request body does not parse)")) from None
    if not isinstance(parsed, dict):
        raise BadRequest("invalid_request", wording("body", "a JSON object"))
    return parsed


def _fast_object(body: bytes, scan: RemoteScan | None) -> dict[str, Any] | None:
    """orjson's parse of ``body`` when it is certainly what the exact parse of :func:`load_object`
    returns (with ``scan`` run on every object); None when that parse must decide.

    orjson keeps the last value of a repeated key, so repeats are found by counting: in JSON text a
    colon outside a string separates a name from its value, so the text's colons, less those inside
    its strings, are its name/value pairs. The parsed objects hold that many names exactly when no
    name was repeated (a repeat drops a pair, and with it any strings and names below it). A string
    decodes a colon from ``:`` or from ``\\u003a``; a body with the latter (or anything like it) goes
    the exact way, as do those orjson refuses, those that are not an object, integers beyond 64
    bits (orjson reads them as floats) and very deep nesting (where json may run out of stack).
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or b"\\u003" in body:
        return None
    check = scan.check if scan is not None else None
    pairs = 0  # name/value pairs in the parsed objects
    colons = 0  # colons inside the parsed strings (names and values)
    level: list[Any] = [data]
    for _ in range(_MAX_DEPTH):
        deeper: list[Any] = []
        for node in level:
            if type(node) is dict:
                pairs += len(node)
                if check is not None:
                    check(node)
                for name in node:
                    if ":" in name:
                        colons += name.count(":")
                values = node.values()
            else:
                values = node
            for value in values:
                kind = type(value)
                if kind is str:
                    if ":" in value:
                        colons += value.count(":")
                elif kind is dict or kind is list:
                    deeper.append(value)
                elif kind is float and (value >= _WIDE or value <= -_WIDE):
                    return None
        if not deeper:
            break
        level = deeper
    else:
        return None
    if body.count(b":") - colons != pairs:
        return None  # a repeated name: the exact parse refuses it
    return data


class _DuplicateKey(Exception):
    pass


def opt_str(data: dict[str, Any], key: str, wording: Wording, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise BadRequest("invalid_request", wording(key, "a string (the field is required)"))
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("invalid_request", wording(key, "a non-empty string"))
    return value


def opt_positive_int(data: dict[str, Any], key: str, wording: Wording) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest("invalid_request", wording(key, "a positive integer"))
    return value


def opt_bool(data: dict[str, Any], key: str, wording: Wording) -> bool:
    value = data.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest("invalid_request", wording(key, "a boolean"))
    return value


def get_path(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...`` or None when any step is missing or not an object."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def count(value: Any) -> int | None:
    """A token count from the upstream: a non-negative int, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


class RemoteScan:
    """Notes, while a request body is decoded, whether it refers to input the provider fetches or keeps.

    That is a non-empty value under one of ``keys`` (file ids, earlier responses, server-side state), a
    URL given as the value of a ``url``-like key, or an object whose ``type`` starts with one of
    ``tool_types`` (server tools such as web search, whose results become input tokens). Checking each
    object as the decoder builds it costs a few set operations, not a second walk of the tree.
    """

    __slots__ = ("found", "keys", "tool_types")

    def __init__(self, keys: Iterable[str], tool_types: tuple[str, ...]) -> None:
        self.keys = frozenset(keys)
        self.tool_types = tool_types
        self.found = False

    def check(self, obj: dict[str, Any]) -> None:
        if self.found:
            return
        if not self.keys.isdisjoint(obj) and any(obj.get(k) not in _EMPTY for k in self.keys.intersection(obj)):
            self.found = True
        elif not _URL_KEYS.isdisjoint(obj) and any(_is_remote_url(obj.get(k)) for k in _URL_KEYS):
            self.found = True
        else:
            kind = obj.get("type")
            self.found = isinstance(kind, str) and kind.startswith(self.tool_types)


_EMPTY: Final[tuple[object, ...]] = (None, "", [], {})
_URL_KEYS: Final = frozenset({"url", "image_url", "file_url"})


def _is_remote_url(value: Any) -> bool:
    if isinstance(value, dict):
        value = value.get("url")
    return isinstance(value, str) and value[:8].lower().startswith(("http://", "https://"))


class SseWatchingMeter(StreamMeter):
    """Passes every chunk through unchanged (no added buffering) and hands each SSE event to ``on_event``."""

    def __init__(self) -> None:
        self._parser = SseParser()
        self._complete = False

    def feed(self, chunk: bytes) -> bytes:
        for event in self._parser.feed(chunk):
            self.on_event(event)
        return chunk

    @abstractmethod
    def on_event(self, event: SseEvent) -> None: ...

    @property
    def complete(self) -> bool:
        return self._complete


class NoUsageMeter(StreamMeter):
    """For routes that cost nothing: passes bytes through and reports no usage."""

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> Usage | None:
        return None

    @property
    def complete(self) -> bool:
        return True
