"""Records: canonical encoding, hash chain, strict parsing, and refusing what is not plain JSON."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatepass.audit import GENESIS_HASH, AuditEvent, AuditMalformedError, encode_record, parse_record
from gatepass.audit.record import canonical_json, check_event, format_ts, make_record, record_hash, seal_record
from gatepass.errors import AuditTamperedError
from gatepass.sensitive import Secret as GatepassSecret

TS = "2025-01-31T12:00:00.000000Z"
SECRET_VALUE = "sk-live-0123456789abcdef"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
metas = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def ev(**meta: object) -> AuditEvent:
    return AuditEvent("admin", "key.issue", "acme-bot-dev", "ok", "admin", meta)


def test_canonical_encoding_does_not_depend_on_key_order() -> None:
    a = ev(z=1, a={"y": [1, 2], "b": "é"}, m=None)
    b = ev(m=None, a={"b": "é", "y": [1, 2]}, z=1)
    line_a = encode_record(make_record(1, TS, a, GENESIS_HASH))
    line_b = encode_record(make_record(1, TS, b, GENESIS_HASH))
    assert line_a == line_b
    assert line_a.endswith(b"\n") and line_a.count(b"\n") == 1
    assert "é".encode() in line_a  # ensure_ascii=False: UTF-8, not \u escapes
    assert b" " not in line_a.replace(b"acme-bot-dev", b"")


def test_hash_is_sha256_of_canonical_body_without_hash() -> None:
    record = make_record(7, TS, ev(k="v"), "a" * 64)
    body = json.loads(encode_record(record))
    del body["hash"]
    expected = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert record.hash == expected == record_hash(record)
    assert canonical_json({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


def test_records_chain_by_prev() -> None:
    prev = GENESIS_HASH
    records = []
    for seq in range(1, 6):
        record = make_record(seq, TS, ev(i=seq), prev)
        records.append(record)
        prev = record.hash
    assert records[0].prev == "0" * 64
    for before, after in itertools.pairwise(records):
        assert after.prev == before.hash
    assert len({r.hash for r in records}) == 5


@given(meta=metas, seq=st.integers(min_value=1, max_value=2**40))
def test_encode_parse_round_trip(meta: dict[str, object], seq: int) -> None:
    record = make_record(seq, TS, ev(**meta), GENESIS_HASH)
    line = encode_record(record)
    parsed = parse_record(line, 3)
    assert parsed == record
    assert encode_record(parsed) == line
    assert parse_record(line.decode()) == record  # str lines work too
    assert parsed.event == record.event


@given(
    fields=st.lists(
        st.text(max_size=12) | st.sampled_from([',"meta":', '","meta":{"', "\\", '"']), min_size=5, max_size=5
    ),
    meta=metas | st.dictionaries(st.sampled_from(["meta", ',"meta":', "hash"]), st.text(max_size=8), max_size=3),
)
def test_sealed_line_is_the_canonical_encoding(fields: list[str], meta: dict[str, object]) -> None:
    # seal_record puts "hash" in front of the first ',"meta":' of the encoding: values that hold
    # those very characters (escaped in the JSON) must not move it.
    event = AuditEvent(*fields, meta)
    record, line = seal_record(9, TS, event, "b" * 64)
    assert line == encode_record(record)
    assert record.hash == record_hash(record)


def test_format_ts_is_utc_with_microseconds_and_z() -> None:
    moment = datetime(2025, 1, 31, 13, 0, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    assert format_ts(moment) == "2025-01-31T12:00:00.000005Z"
    with pytest.raises(ValueError, match="aware"):
        format_ts(datetime(2025, 1, 31))
    assert format_ts(datetime(2025, 1, 31, tzinfo=UTC)).endswith(".000000Z")


GOOD = encode_record(make_record(1, TS, ev(a=1), GENESIS_HASH))


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        (b"not json", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1,2]", "not a JSON object"),
        (GOOD.replace(b'"reason":"admin",', b""), "wrong set of fields"),
        (GOOD.replace(b'{"action"', b'{"extra":1,"action"'), "wrong set of fields"),
        (GOOD.replace(b'"seq":1', b'"seq":0'), "positive integer"),
        (GOOD.replace(b'"seq":1', b'"seq":true'), "positive integer"),
        (GOOD.replace(b'"seq":1', b'"seq":"1"'), "positive integer"),
        (GOOD.replace(b'"reason":"admin"', b'"reason":5'), "must be a string"),
        (GOOD.replace(TS.encode(), b"2025-01-31 12:00:00Z"), "ts must look like"),
        (GOOD.replace(b'"prev":"0', b'"prev":"G'), "64 lowercase hex"),
        (GOOD.replace(b'"meta":{"a":1}', b'"meta":[]'), "meta must be an object"),
        (GOOD.replace(b'"meta":{"a":1}', b'"meta":{"a":NaN}'), "not UTF-8 JSON"),
        (GOOD.replace(b",", b", "), "not in canonical form"),
        (GOOD.replace(b'"a":1', b'"a":1e0'), "not in canonical form"),
        (GOOD.replace(b'"a":1}', b'"a":1,"a":1}'), "not in canonical form"),
    ],
)
def test_parse_is_strict_and_names_the_line(line: bytes, detail: str) -> None:
    with pytest.raises(AuditMalformedError, match=detail) as info:
        parse_record(line, 42)
    assert "audit.jsonl line 42" in info.value.message
    assert info.value.lineno == 42
    assert isinstance(info.value, AuditTamperedError)


def test_parse_error_without_line_number_names_the_offset() -> None:
    with pytest.raises(AuditMalformedError, match="at byte 1234"):
        parse_record(b"{}", offset=1234)


class Secret:
    """A local stand-in for a secret wrapper, as a careless caller might pass one."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Secret({self.value!r})"


class SecretStr(str):
    """A str subclass: json would write its value out, so it must be refused."""

    __slots__ = ()


@pytest.mark.parametrize(
    "meta",
    [
        {"token": Secret(SECRET_VALUE)},
        {"nested": {"deeper": [1, Secret(SECRET_VALUE)]}},
        {"token": GatepassSecret(SECRET_VALUE)},
        {"token": SecretStr(SECRET_VALUE)},
        {"token": (SECRET_VALUE,)},
        {"token": {SECRET_VALUE.encode()}},
        {"token": SECRET_VALUE.encode()},
        {"token": {1: SECRET_VALUE}},
    ],
)
def test_non_json_meta_is_refused_without_revealing_the_value(meta: dict[str, object]) -> None:
    with pytest.raises(TypeError) as info:
        ev(**meta)
    assert SECRET_VALUE not in str(info.value)
    assert "cannot be recorded" in str(info.value) or "keys must be str" in str(info.value)


def test_meta_changed_in_place_is_refused_when_encoded() -> None:
    meta: dict[str, object] = {"ok": 1}
    event = ev(**meta)
    assert isinstance(event.meta, dict)
    event.meta["token"] = Secret(SECRET_VALUE)
    with pytest.raises(TypeError, match="type Secret") as info:
        encode_record(make_record(1, TS, event, GENESIS_HASH))
    assert SECRET_VALUE not in str(info.value)
    with pytest.raises(TypeError):
        check_event(event)


def test_event_fields_must_be_plain_str() -> None:
    with pytest.raises(TypeError, match="'actor' must be a str") as info:
        AuditEvent(SecretStr(SECRET_VALUE), "request", "t", "allow", "ok", {})
    assert SECRET_VALUE not in str(info.value)
    with pytest.raises(TypeError):
        AuditEvent("a", "request", 5, "allow", "ok", {})  # type: ignore[arg-type]


def test_non_finite_floats_and_lone_surrogates_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        ev(x=float("nan"))
    with pytest.raises(ValueError, match="surrogate"):
        encode_record(make_record(1, TS, ev(x="\ud800"), GENESIS_HASH))


def test_record_can_be_rebuilt_with_replace() -> None:
    record = make_record(1, TS, ev(), GENESIS_HASH)
    edited = replace(record, target="other")
    assert record_hash(edited) != edited.hash
