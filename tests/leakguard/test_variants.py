"""Every encoded form of a value decodes back to it, and base64 fragments sit inside any surrounding stream."""

from __future__ import annotations

import base64
import json
import secrets
from urllib.parse import unquote_to_bytes

from hypothesis import given
from hypothesis import strategies as st

from gatepass.leakguard.variants import encoded_forms


@given(value=st.binary(min_size=8, max_size=64), before=st.binary(max_size=7), after=st.binary(max_size=7))
def test_base64_fragments_are_found_at_every_alignment(value: bytes, before: bytes, after: bytes) -> None:
    forms = encoded_forms(value)
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        stream = encode(before + value + after)
        assert any(literal in stream for encoding, literal in forms if encoding.startswith("base64"))


@given(st.binary(min_size=8, max_size=64))
def test_each_form_decodes_to_the_value(value: bytes) -> None:
    for encoding, literal in encoded_forms(value):
        if encoding == "raw":
            assert literal == value
        elif encoding == "url":
            assert unquote_to_bytes(literal) == value
        elif encoding == "hex":
            assert bytes.fromhex(literal.decode()) == value
        elif encoding == "json":
            assert json.loads(b'"' + literal + b'"').encode() == value
        else:
            assert encoding in ("base64", "base64url")


def test_forms_that_equal_an_earlier_one_are_left_out() -> None:
    value = ("zz" + secrets.token_urlsafe(16)).encode()  # nothing to escape: url and json equal raw
    encodings = [encoding for encoding, _ in encoded_forms(value)]
    assert encodings.count("raw") == 1 and "url" not in encodings and "json" not in encodings
    assert encodings.count("hex") == 2  # lower and upper case differ
    literals = [literal for _, literal in encoded_forms(value)]
    assert len(literals) == len(set(literals))


def test_every_escaping_variant_is_listed() -> None:
    value = 'pa/ss+wörd"é'.encode()
    forms = encoded_forms(value)
    assert ("url", b"pa%2Fss%2Bw%C3%B6rd%22%C3%A9") in forms
    assert ("url", b"pa%2fss%2bw%c3%b6rd%22%c3%a9") in forms
    assert ("json", b'pa/ss+w\\u00f6rd\\"\\u00e9') in forms
    assert ("json", 'pa/ss+wörd\\"é'.encode()) in forms


def test_bytes_that_are_not_utf8_have_no_json_form() -> None:
    value = b"\xff\xfe" + secrets.token_bytes(10)
    assert "json" not in {encoding for encoding, _ in encoded_forms(value)}
