"""Helpers shared by the plugins: strict request JSON, remote-input scanning, lenient usage numbers, meters."""

from __future__ import annotations

import pytest

from gatepass.providers import BadRequest
from gatepass.providers.base import (
    NoUsageMeter,
    RemoteScan,
    SseWatchingMeter,
    count,
    get_path,
    load_json,
    load_object,
    opt_bool,
    opt_positive_int,
    opt_str,
)
from gatepass.providers.interface import Usage
from gatepass.providers.sse import SseEvent


def wording(field: str, expected: str) -> str:
    return f"{field} should be {expected}"


def test_load_object_refuses_repeated_keys_at_any_depth() -> None:
    assert load_object(b'{"a": {"b": 1}, "c": [{"b": 2}]}', wording) == {"a": {"b": 1}, "c": [{"b": 2}]}
    with pytest.raises(BadRequest, match="repeated keys"):
        load_object(b'{"a": {"b": 1, "b": 2}}', wording)


def test_load_object_refuses_deep_nesting_as_bad_json() -> None:
    with pytest.raises(BadRequest) as info:
        load_object(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", wording)
    assert info.value.code == "invalid_json"


def test_field_readers() -> None:
    data = {"s": "x", "n": 3, "b": True, "empty": "  ", "null": None}
    assert opt_str(data, "s", wording) == "x" and opt_str(data, "null", wording) is None
    assert opt_positive_int(data, "n", wording) == 3 and opt_positive_int(data, "missing", wording) is None
    assert opt_bool(data, "b", wording) is True and opt_bool(data, "missing", wording) is False
    with pytest.raises(BadRequest, match="empty should be a non-empty string"):
        opt_str(data, "empty", wording)
    with pytest.raises(BadRequest, match="required"):
        opt_str(data, "missing", wording, required=True)


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (b'{"messages": [{"content": "see https://example.com"}]}', False),  # a URL in text is only text
        (b'{"a": {"file_id": "file_1"}}', True),
        (b'{"a": {"file_id": null}}', False),
        (b'{"a": {"file_id": ""}}', False),
        (b'{"image_url": "HTTPS://x.test/a.png"}', True),
        (b'{"image_url": {"url": "http://x.test/a.png"}}', True),
        (b'{"url": "data:image/png;base64,AAA"}', False),
        (b'{"tools": [{"type": "web_search_20250305"}]}', True),
        (b'{"tools": [{"type": "custom"}]}', False),
    ],
)
def test_remote_scan(body: bytes, found: bool) -> None:
    scan = RemoteScan(["file_id"], ("web_search",))
    load_object(body, wording, scan)
    assert scan.found is found


def test_lenient_usage_readers() -> None:
    assert load_json(b"not json") is None and load_json(b"[1]") == [1]
    assert get_path({"a": {"b": 2}}, "a", "b") == 2 and get_path({"a": [1]}, "a", "b") is None
    assert [count(v) for v in (0, 7, -1, 1.0, True, "3", None)] == [0, 7, None, None, None, None, None]


class Recorder(SseWatchingMeter):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def on_event(self, event: SseEvent) -> None:
        self.seen.append(event.data)
        self._complete = event.data == "end"

    def finish(self) -> Usage | None:
        return None


def test_watching_meter_passes_chunks_and_sees_events() -> None:
    meter = Recorder()
    chunk = b"data: a\n\ndata: en"
    assert meter.feed(chunk) is chunk
    assert meter.feed(b"d\n\n") == b"d\n\n"
    assert meter.seen == ["a", "end"] and meter.complete and meter.flush() == b""


def test_no_usage_meter() -> None:
    meter = NoUsageMeter()
    assert meter.feed(b"x") == b"x" and meter.finish() is None and meter.complete
