"""StreamRedactor: values split across chunks are still redacted; clean streams pass through, held back little."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from gatepass.leakguard import LeakScanner, StreamRedactor
from tests.conftest import fake_secret

# Values that cannot be spelt by a redaction marker with its neighbours (a marker is "[REDACTED:name]").
SECRET_VALUES = st.binary(min_size=8, max_size=32).filter(lambda v: not set(v) & set(b"[]:") and b"REDACTED" not in v)


def run(redactor: StreamRedactor, chunks: list[bytes]) -> bytes:
    return b"".join(redactor.feed(chunk) for chunk in chunks) + redactor.flush()


def test_a_secret_split_at_every_point_is_redacted() -> None:
    secret = fake_secret("FAKE-", 30).encode()
    scanner = LeakScanner([("main", secret)], patterns=False)
    for form in (secret, base64.b64encode(b"x" + secret), secret.hex().encode()):
        data = b'{"text": "echo ' + form + b' done"}'
        expected = scanner.redact(data, scanner.scan(data))
        assert b"[REDACTED:main]" in expected
        for cut in range(len(data) + 1):
            redactor = StreamRedactor(scanner)
            assert run(redactor, [data[:cut], data[cut:]]) == expected, cut
            assert redactor.redacted == 1
        for size in (1, 2, 3, 7):
            chunks = [data[i : i + size] for i in range(0, len(data), size)]
            assert run(StreamRedactor(scanner), chunks) == expected, size


def test_only_vault_secrets_by_default() -> None:
    secret, canary = fake_secret("S", 20).encode(), fake_secret("C", 20).encode()
    akid = b"AKIA" + fake_secret("", 16).upper().encode()
    scanner = LeakScanner([("s", secret)], [("c", canary)])
    data = b" ".join([secret, canary, akid])
    assert run(StreamRedactor(scanner), [data]) == b" ".join([b"[REDACTED:s]", canary, akid])
    both = run(StreamRedactor(scanner, kinds={"secret", "canary"}), [data])
    assert both == b" ".join([b"[REDACTED:s]", b"[REDACTED:c]", akid])


def test_a_clean_stream_flows_with_at_most_longest_minus_one_bytes_held() -> None:
    scanner = LeakScanner([("s", fake_secret("", 24).encode())])
    hold = scanner.longest - 1
    redactor = StreamRedactor(scanner)
    data = fake_secret("", 500).encode()
    out = b""
    for at in range(0, len(data), 37):
        out += redactor.feed(data[at : at + 37])
        fed = min(at + 37, len(data))
        assert out == data[: max(fed - hold, 0)]
    assert out + redactor.flush() == data
    assert redactor.flush() == b""  # empty after a flush, ready for the next stream


def test_without_values_nothing_is_held() -> None:
    redactor = StreamRedactor(LeakScanner())
    assert redactor.feed(b"abc") == b"abc"
    assert redactor.flush() == b""


def test_overlapping_secrets_across_a_boundary_leak_nothing() -> None:
    a, b, c = (fake_secret("", 10).encode() for _ in range(3))
    scanner = LeakScanner([("ab", a + b), ("bc", b + c)], patterns=False)
    data = b"<" + a + b + c + b">"
    for cut in range(len(data) + 1):
        out = run(StreamRedactor(scanner), [data[:cut], data[cut:]])
        assert out.startswith(b"<[REDACTED:") and out.endswith(b"]>"), (cut, out)
        for part in (a, b, c):
            assert part not in out


@settings(max_examples=80, deadline=None)
@given(
    secrets_=st.lists(SECRET_VALUES, min_size=1, max_size=3, unique=True),
    noise=st.lists(st.binary(max_size=20), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_any_chunking_leaks_no_secret(secrets_: list[bytes], noise: list[bytes], cuts: list[int]) -> None:
    scanner = LeakScanner([(f"s{i}", v) for i, v in enumerate(secrets_)], patterns=False)
    data = b"".join(n + secrets_[i % len(secrets_)] for i, n in enumerate(noise))
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[i:j] for i, j in zip([0, *points], [*points, len(data)], strict=True)]
    out = run(StreamRedactor(scanner), chunks)
    assert scanner.scan(out) == []
