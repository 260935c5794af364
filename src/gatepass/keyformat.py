"""The gatepass key format: ``gp_`` + 33 base62 characters (192 random bits) + a 6-character checksum.

The checksum (CRC-32 of the random part, in base62) lets scanners recognise a gatepass key and
lets the gateway turn away a mistyped one without a store lookup. Keys are stored only as
HMAC-SHA256 under a server secret and compared in constant time.
"""

from __future__ import annotations

import hmac
import re
import secrets
import zlib
from collections.abc import Callable
from hashlib import sha256
from typing import Final

from gatepass.sensitive import Secret

__all__ = ["KEY_PATTERN", "KEY_PREFIX", "generate_key", "is_well_formed", "key_digest", "key_digester", "new_id"]

KEY_PREFIX: Final = "gp_"
_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_BYTES: Final = 24
_BODY_LEN: Final = 33  # ceil(192 / log2(62))
_CHECK_LEN: Final = 6  # ceil(32 / log2(62))
KEY_PATTERN: Final = re.compile(rf"\bgp_[0-9A-Za-z]{{{_BODY_LEN + _CHECK_LEN}}}\b")
_WHOLE_KEY: Final = re.compile(rf"gp_([0-9A-Za-z]{{{_BODY_LEN}}})([0-9A-Za-z]{{{_CHECK_LEN}}})")
_ID_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        out.append(_ALPHABET[digit])
    if value:
        raise ValueError("value does not fit the width")
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), _CHECK_LEN)


def generate_key() -> Secret:
    """A new gatepass key: 192 bits from the OS CSPRNG, base62, with its checksum."""
    body = _base62(int.from_bytes(secrets.token_bytes(_RANDOM_BYTES), "big"), _BODY_LEN)
    return Secret(KEY_PREFIX + body + _checksum(body))


def is_well_formed(text: str) -> bool:
    """Prefix, length, alphabet and checksum are right (says nothing of whether the key exists)."""
    found = _WHOLE_KEY.fullmatch(text)
    return found is not None and hmac.compare_digest(_checksum(found[1]), found[2])


def key_digest(hmac_key: bytes, key: Secret) -> str:
    """The HMAC-SHA256 of a key under the server secret, hex; the only form in which keys are stored."""
    return hmac.new(hmac_key, key.reveal().encode("ascii", "replace"), sha256).hexdigest()


def key_digester(hmac_key: bytes) -> Callable[[str], bytes]:
    """:func:`key_digest` as bytes, for many keys under one secret: the secret's padded blocks are
    hashed once, not once per key."""
    keyed = hmac.new(hmac_key, digestmod=sha256)

    def digest(key: str) -> bytes:
        one = keyed.copy()
        one.update(key.encode("ascii", "replace"))
        return one.digest()

    return digest


def new_id(prefix: str, length: int = 10) -> str:
    """A short random identifier such as ``key_4k9x0q2m7a`` (not a secret; for naming records)."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))
