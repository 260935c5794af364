"""The forms in which a secret value may travel: raw, base64 (standard and URL-safe, at any offset
inside a larger base64 stream), percent-encoded, hex and JSON-escaped."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from urllib.parse import quote

__all__ = ["encoded_forms"]

_PERCENT = re.compile(rb"%[0-9A-F]{2}")


def _base64_fragments(value: bytes, encode: Callable[[bytes], bytes]) -> list[bytes]:
    """The characters of ``value``'s base64 that do not depend on its neighbours, for each of the three
    offsets (mod 3) at which it can sit in a larger stream.

    With ``k`` filler bytes before it, the value holds bits ``8k .. 8(k+n)`` of the stream; base64
    character ``i`` holds bits ``6i .. 6i+6``, so characters ``ceil(8k/6) .. floor(8(k+n)/6)`` are
    the value's alone.
    """
    n = len(value)
    return [encode(bytes(k) + value)[-(-8 * k // 6) : (8 * (k + n)) // 6] for k in range(3)]


def _json_forms(value: bytes) -> list[bytes]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return []
    return [json.dumps(text, ensure_ascii=ascii_only)[1:-1].encode("utf-8") for ascii_only in (True, False)]


def encoded_forms(value: bytes) -> list[tuple[str, bytes]]:
    """(encoding, literal) for each form of ``value``; a literal equal to an earlier form is left out."""
    url = quote(value, safe="").encode("ascii")
    candidates: list[tuple[str, bytes]] = [
        ("raw", value),
        *(("base64", f) for f in _base64_fragments(value, base64.b64encode)),
        *(("base64url", f) for f in _base64_fragments(value, base64.urlsafe_b64encode)),
        ("url", url),
        ("url", _PERCENT.sub(lambda m: m.group().lower(), url)),
        ("hex", value.hex().encode("ascii")),
        ("hex", value.hex().upper().encode("ascii")),
        *(("json", form) for form in _json_forms(value)),
    ]
    forms: dict[bytes, str] = {}
    for encoding, literal in candidates:
        forms.setdefault(literal, encoding)
    return [(encoding, literal) for literal, encoding in forms.items()]
