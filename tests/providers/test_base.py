"""Helpers shared by the plugins: strict request JSON, remote-input scanning, lenient usage numbers, meters."""

from __future__ import annotations

import pytest

from gatepass.providers import BadRequest
from gatepass.providers.base import (
    NoUsageMeter,
    RemoteScan,
    count,
    get_path,
    load_json,
    load_object,
    opt_bool,
    opt_positive_int,
    opt_str,
)
from gatepass.providers.fake import FakeStreamMeter
from gatepass.providers.interface import Usage


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


def test_watching_meter_passes_chunks_and_sees_events() -> None:
    # FakeStreamMeter is the plainest SseWatchingMeter: usage from a "usage" event, complete at [DONE].
    meter = FakeStreamMeter()
    chunk = b'data: {"usage": {"input_tokens": 3, "output_tokens": 4}}\n\ndata: [DO'
    assert meter.feed(chunk) is chunk  # passed through as it came, nothing held back
    assert not meter.complete  # the [DONE] event is not whole yet
    assert meter.feed(b"NE]\n\n") == b"NE]\n\n"
    assert meter.complete and meter.flush() == b"" and meter.finish() == Usage(3, 4)


def test_no_usage_meter() -> None:
    meter = NoUsageMeter()
    assert meter.feed(b"x") == b"x" and meter.finish() is None and meter.complete


# -- the orjson fast path gives exactly the result of the exact (json, object_pairs_hook) parse --------


def _exact(body: bytes, scan: RemoteScan | None) -> object:
    """What load_object answered before it had a fast path: the exact parse alone."""
    import json

    class Repeated(Exception):
        pass

    def build(pairs: list[tuple[str, object]]) -> dict[str, object]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise Repeated
        if scan is not None:
            scan.check(obj)
        return obj

    if not body.strip():
        return "empty"
    try:
        data = json.loads(body, object_pairs_hook=build)
    except Repeated:
        return "repeated"
    except (ValueError, RecursionError):
        return "invalid_json"
    return data if isinstance(data, dict) else "not_object"


def _outcome(body: bytes, scan: RemoteScan | None) -> object:
    try:
        return load_object(body, wording, scan)
    except BadRequest as exc:
        if "repeated" in str(exc):
            return "repeated"
        if "empty" in str(exc):
            return "empty"
        return "invalid_json" if exc.code == "invalid_json" else "not_object"


def _same(body: bytes) -> None:
    fast_scan, exact_scan = RemoteScan(["file_id"], ("web_search",)), RemoteScan(["file_id"], ("web_search",))
    fast, exact = _outcome(body, fast_scan), _exact(body, exact_scan)
    assert repr(fast) == repr(exact), body  # repr: tells 1 from 1.0 and True, and -0.0 from 0.0
    if isinstance(exact, dict):
        assert fast_scan.found is exact_scan.found, body


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1,"a":2}',
        b'{"a:b":1,"a:b":2}',
        b'{"x":"c:d","a":1,"a":2}',
        b'{"a":{"k":"1:2:3"},"a":{"k":"x"},"b":"::"}',
        b'{"a":"\\u003a","a":1}',  # an escaped colon would hide a repeat from the count
        b'{"\\u0061":1,"a":2}',  # the same name, written two ways
        b'{"a":[{"b":1,"b":1}]}',
        b'{"a":18446744073709551616}',  # beyond 64 bits: json keeps it an int
        b'{"a":-9223372036854775809}',
        b'{"a":9223372036854775807,"b":-9223372036854775808,"c":18446744073709551615}',
        b'{"a":1e400}',
        b'{"a":NaN}',
        b'{"a":-Infinity}',
        b'\xef\xbb\xbf{"a":1}',  # a byte order mark
        b'{"a":"\\ud800"}',  # a lone surrogate
        b'{"a":1.0,"b":-0.0,"c":0.1,"d":1e-7,"e":12345678901234567890.5}',
        b'[{"a":1}]',
        b'"text"',
        b"   ",
        b"{}",
        b'{"a":1} x',
        b'{"a":"\x01"}',
        b'{"a":' + b"[" * 150 + b"]" * 150 + b"}",
        b'{"a":' + b"[" * 99 + b"]" * 99 + b"}",
        b'{"file_id":"f","a":"http://x"}',
        b'{"t":[{"type":"web_search_1"}],"a":"b:c"}',
        '{"é:ü":"ü:é","x":"\\u00e9"}'.encode(),
        '{"a":"x"}'.encode("utf-16"),
        b'{"a" : 1 , "b" :\n2}',
    ],
)
def test_fast_parse_matches_the_exact_parse(body: bytes) -> None:
    _same(body)


def test_fast_parse_matches_the_exact_parse_on_random_json() -> None:
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st

    names = st.sampled_from(["a", "b", "a:b", ":", "file_id", "type", "url", "é"]) | st.text(max_size=4)
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(alphabet=st.sampled_from('ab:"\\é\x01/u'), max_size=6)
        | st.sampled_from(["web_search_x", "http://h/", "https://h/x"])
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.lists(st.tuples(names, inner), max_size=4),
        max_leaves=20,
    )

    def encode(value: object) -> str:
        if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
            # a list of pairs is an object, written with its repeats (if any)
            return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value) + "}"
        if isinstance(value, list):
            return "[" + ",".join(encode(v) for v in value) + "]"
        return json.dumps(value, ensure_ascii=False)

    pairs = st.lists(st.tuples(names, values), max_size=5)

    @settings(max_examples=400, deadline=None)
    @given(pairs, st.booleans())
    def check(top: list[tuple[str, object]], ascii_only: bool) -> None:
        text = "{" + ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}:{encode(v)}" for k, v in top) + "}"
        _same(text.encode())

    check()


def test_load_json_keeps_wide_integers_of_the_numbers_it_is_asked_for() -> None:
    body = b'{"usage":{"input_tokens":18446744073709551616,"d":{"n":-9223372036854775809}},"other":1.5}'
    assert load_json(body, "usage") == {
        "usage": {"input_tokens": 18446744073709551616, "d": {"n": -9223372036854775809}},
        "other": 1.5,
    }
    assert load_json(b'{"a":NaN}') is not None and load_json(b"not json") is None
    assert load_json(b'\xef\xbb\xbf{"a":1}') == {"a": 1}
