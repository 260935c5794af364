"""Checkpoints: signature over the canonical fields, key id, strict parsing."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatepass.audit import AuditMalformedError
from gatepass.audit.checkpoint import (
    encode_checkpoint,
    key_id_of,
    parse_checkpoint,
    public_key_bytes,
    sign_checkpoint,
    verify_checkpoint,
)

KEY = Ed25519PrivateKey.generate()
TS = "2025-01-31T12:00:00.000000Z"
HASH = "ab" * 32


def test_signature_covers_the_canonical_encoding_of_the_other_fields() -> None:
    cp = sign_checkpoint(KEY, 7, HASH, TS)
    signed = json.dumps(
        {"seq": 7, "hash": HASH, "ts": TS, "key_id": cp.key_id}, sort_keys=True, separators=(",", ":")
    ).encode()
    KEY.public_key().verify(base64.b64decode(cp.sig), signed)  # raises if not
    assert verify_checkpoint(cp, KEY.public_key())
    assert cp.key_id == hashlib.sha256(public_key_bytes(KEY.public_key())).hexdigest()[:16]
    assert cp.key_id == key_id_of(KEY.public_key())


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 8},
        {"hash": "cd" * 32},
        {"ts": TS.replace("12:", "13:")},
        {"key_id": "0" * 16},
        {"sig": "AAAA"},
        {"sig": "not base64!"},
    ],
)
def test_any_change_breaks_the_signature(change: dict[str, object]) -> None:
    cp = replace(sign_checkpoint(KEY, 7, HASH, TS), **change)  # type: ignore[arg-type]
    assert not verify_checkpoint(cp, KEY.public_key())


def test_another_key_does_not_verify() -> None:
    cp = sign_checkpoint(KEY, 7, HASH, TS)
    assert not verify_checkpoint(cp, Ed25519PrivateKey.generate().public_key())


def test_line_round_trip() -> None:
    cp = sign_checkpoint(KEY, 7, HASH, TS)
    line = encode_checkpoint(cp)
    assert line.endswith(b"}\n") and line.startswith(b'{"hash":')
    assert parse_checkpoint(line, 1) == cp == parse_checkpoint(line.decode())


GOOD = encode_checkpoint(sign_checkpoint(KEY, 7, HASH, TS))


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        (b"nope", "not UTF-8 JSON"),
        (b"{}", "wrong set of fields"),
        (GOOD.replace(b'"seq":7', b'"seq":-7'), "positive integer"),
        (GOOD.replace(b'"seq":7', b'"seq":"7"'), "positive integer"),
        (GOOD.replace(HASH.encode(), b"AB" * 32), "lowercase hex"),
        (GOOD.replace(TS.encode(), b"yesterday"), "ts must look like"),
        (GOOD.replace(b",", b", "), "canonical"),
    ],
)
def test_parse_is_strict_and_names_the_line(line: bytes, detail: str) -> None:
    with pytest.raises(AuditMalformedError, match=detail) as info:
        parse_checkpoint(line, 3)
    assert "checkpoints.jsonl line 3" in info.value.message
