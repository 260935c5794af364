"""LeakScanner: secrets and canaries in every form, credential formats, the caller's own key, redaction."""

from __future__ import annotations

import base64
import json
import re
import secrets
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatepass.keyformat import generate_key
from gatepass.leakguard import MIN_SECRET_BYTES, Finding, LeakScanner, Skipped
from tests.conftest import fake_secret

# Values that cannot be spelt by a redaction marker with its neighbours (a marker is "[REDACTED:name]").
SECRET_VALUES = st.binary(min_size=8, max_size=32).filter(lambda v: not set(v) & set(b"[]:") and b"REDACTED" not in v)


def value() -> bytes:
    return fake_secret("FAKE-", 40).encode()


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("alignment", range(6))
def test_base64_at_every_alignment_inside_a_larger_blob(encode: object, alignment: int) -> None:
    assert callable(encode)
    secret = value() + b"?>~"  # bytes whose base64 differs between the standard and URL-safe alphabets
    scanner = LeakScanner([("anthropic-main", secret)])
    blob = b'{"image": "' + encode(secrets.token_bytes(300 + alignment) + secret + secrets.token_bytes(301)) + b'"}'
    findings = scanner.scan(blob)
    assert [(f.kind, f.name) for f in findings] == [("secret", "anthropic-main")]
    expected = "base64" if encode is base64.b64encode else "base64url"
    assert findings[0].encoding == expected


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("raw", lambda v: v),
        ("url", lambda v: quote(v, safe="").encode()),
        ("url", lambda v: re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(v, safe="")).encode()),
        ("hex", lambda v: v.hex().encode()),
        ("hex", lambda v: v.hex().upper().encode()),
        ("json", lambda v: json.dumps(v.decode())[1:-1].encode()),
    ],
)
def test_each_encoding_is_found_inside_text(encoding: str, encode: object) -> None:
    assert callable(encode)
    secret = value() + b'/"+ \\'  # something to escape for url and json
    scanner = LeakScanner([("main", secret)])
    body = b"prefix text " * 20 + encode(secret) + b" suffix" * 20
    findings = scanner.scan(body)
    assert [(f.kind, f.name, f.encoding) for f in findings] == [("secret", "main", encoding)]
    assert body[findings[0].start : findings[0].end] == encode(secret)


def test_canaries_and_secrets_are_told_apart() -> None:
    secret, canary = value(), value()
    scanner = LeakScanner([("vault-one", secret)], [("canary-aws", canary)])
    body = b"a " + canary + b" b " + secret
    assert [(f.kind, f.name, f.start) for f in scanner.scan(body)] == [
        ("canary", "canary-aws", 2),
        ("secret", "vault-one", len(canary) + 5),
    ]
    assert [f.kind for f in scanner.scan(body, kinds={"secret"})] == ["secret"]


def test_one_value_under_two_names_gives_two_findings() -> None:
    shared = value()
    scanner = LeakScanner([("a", shared), ("b", shared)])
    assert sorted(f.name for f in scanner.scan(shared)) == ["a", "b"]


def test_credential_formats_and_the_callers_own_key() -> None:
    own, other = generate_key().reveal().encode(), generate_key().reveal().encode()
    akid = b"AKIA" + fake_secret("", 16).upper().encode()
    scanner = LeakScanner()
    body = b"x-api-key: " + own + b"\nleaked: " + other + b"\nid=" + akid
    names = [f.name for f in scanner.scan(body, allow_key=own)]
    assert names == ["gatepass-key", "aws-access-key-id"]
    (first, _) = scanner.scan(body, allow_key=own)
    assert body[first.start : first.end] == other and first.kind == "pattern" and first.encoding == "raw"
    assert [f.name for f in scanner.scan(body)].count("gatepass-key") == 2
    assert LeakScanner(patterns=False).scan(body) == []


def test_limit_stops_early() -> None:
    secret = value()
    scanner = LeakScanner([("s", secret)])
    body = (secret + b" AKIA" + fake_secret("", 16).upper().encode() + b" ") * 5
    assert len(scanner.scan(body)) == 10
    assert len(scanner.scan(body, limit=1)) == 1
    assert len(scanner.scan(body, limit=7)) == 7
    with pytest.raises(ValueError, match="at least 1"):
        scanner.scan(body, limit=0)


def test_short_values_are_skipped_with_a_reason() -> None:
    short = b"x" * (MIN_SECRET_BYTES - 1)
    scanner = LeakScanner([("pin", short), ("ok", value())], [("tiny", b"abc")])
    assert scanner.skipped == (
        Skipped("secret", "pin", f"shorter than {MIN_SECRET_BYTES} bytes, so it would match almost anywhere"),
        Skipped("canary", "tiny", f"shorter than {MIN_SECRET_BYTES} bytes, so it would match almost anywhere"),
    )
    assert scanner.scan(short * 3) == []


def test_nothing_shows_a_value() -> None:
    secret, canary = value(), value()
    scanner = LeakScanner([("main", secret)], [("decoy", canary)])
    assert re.fullmatch(r"LeakScanner\(secrets=1, canaries=1, skipped=0, literals=\d+, patterns=True\)", repr(scanner))
    findings = scanner.scan(b"<" + secret + b"><" + base64.b64encode(canary) + b">")
    assert len(findings) == 2
    shown = repr(findings) + str(findings) + repr(scanner) + str(scanner.skipped)
    for v in (secret, canary, base64.b64encode(canary)):
        assert v.decode() not in shown
    assert all(isinstance(field, str | int) for f in findings for field in f)


def test_longest_is_the_longest_literal() -> None:
    secret = value()
    assert LeakScanner([("s", secret)]).longest == len(secret) * 2  # hex
    assert LeakScanner([("s", b"/" * 10)]).longest == 30  # %2F per byte
    assert LeakScanner().longest == 0


def test_redact_removes_every_occurrence_including_overlapping_ones() -> None:
    a, b, c = (fake_secret("", 12).encode() for _ in range(3))
    unit = fake_secret("", 5).encode()
    scanner = LeakScanner([("first", a + b), ("second", b + c), ("periodic", unit * 3)])
    data = b"start " + a + b + c + b" middle " + unit * 5 + b" " + base64.b64encode(a + b) + b" end"
    findings = scanner.scan(data)
    redacted = scanner.redact(data, findings)
    assert redacted.startswith(b"start [REDACTED:first,second] middle [REDACTED:periodic] ")
    assert b"[REDACTED:first]" in redacted.split(b"[REDACTED:periodic]")[1]  # the base64 form
    for part in (a, b, c, unit):
        assert part not in redacted
    assert scanner.scan(redacted, kinds={"secret"}) == []


def test_redact_with_no_findings_changes_nothing() -> None:
    assert LeakScanner().redact(b"plain", []) == b"plain"


def test_redact_touching_spans_stay_separate() -> None:
    findings = [Finding("secret", "x", 0, 2, "raw"), Finding("pattern", "y", 2, 4, "raw")]
    assert LeakScanner().redact(b"abcdef", findings) == b"[REDACTED:x][REDACTED:y]ef"


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(SECRET_VALUES, min_size=1, max_size=4, unique=True),
    noise=st.lists(st.binary(max_size=40), min_size=1, max_size=6),
    picks=st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(["raw", "b64", "hex", "url"])), max_size=6),
)
def test_redacted_data_holds_no_secret(values: list[bytes], noise: list[bytes], picks: list[tuple[int, str]]) -> None:
    encoders = {
        "raw": lambda v: v,
        "b64": base64.b64encode,
        "hex": lambda v: v.hex().encode(),
        "url": lambda v: quote(v, safe="").encode(),
    }
    scanner = LeakScanner([(f"s{i}", v) for i, v in enumerate(values)], patterns=False)
    data = b"".join(n + encoders[how](values[i % len(values)]) for n, (i, how) in zip(noise, picks, strict=False))
    redacted = scanner.redact(data, scanner.scan(data))
    assert scanner.scan(redacted) == []
    for v in values:
        assert v not in redacted
