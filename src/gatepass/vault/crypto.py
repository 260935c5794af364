"""Symmetric cryptography of the vault: the master key, AES-256-GCM sealing and key derivation.

Every seal uses a fresh 96-bit random nonce, and binds the record's identity as associated data,
so a ciphertext copied from one record to another fails authentication instead of decrypting.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from hashlib import sha256
from typing import Final, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gatepass.errors import MasterKeyError, TamperedCiphertextError

__all__ = ["KEY_BYTES", "NONCE_BYTES", "MasterKey", "derive", "open_sealed", "seal"]

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12


class MasterKey:
    """The 256-bit key that opens a home's vault. Prints as a mask; compares in constant time."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise MasterKeyError(f"the master key must be {KEY_BYTES} bytes; generate one with gatepass init")
        self._raw = raw

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str, *, source: str) -> MasterKey:
        """Read a key written as base64 (standard or URL-safe) or as 64 hex digits."""
        text = text.strip()
        raw: bytes | None = None
        if len(text) == 2 * KEY_BYTES:
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = None
        if raw is None:
            try:
                raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
            except (binascii.Error, ValueError):
                raw = None
        if raw is None or len(raw) != KEY_BYTES:
            raise MasterKeyError(
                f"the master key in {source} is malformed: it must be {KEY_BYTES} bytes in base64 or hex "
                '(e.g. the output of: python3 -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())")'
            )
        return cls(raw)

    def to_text(self) -> str:
        return base64.b64encode(self._raw).decode("ascii")

    def key_id(self) -> str:
        """A short public identifier of the key (not enough to recover it)."""
        return hmac.new(self._raw, b"gatepass master key id", sha256).hexdigest()[:12]

    def derive(self, purpose: str) -> bytes:
        return derive(self._raw, purpose)

    def __repr__(self) -> str:
        return "MasterKey('[secure]')"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MasterKey):
            return NotImplemented
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        raise TypeError("MasterKey is not hashable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("MasterKey cannot be pickled")


def derive(key: bytes, purpose: str) -> bytes:
    """A 256-bit subkey for one purpose (HKDF-SHA256), so no key is used for two jobs."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=f"gatepass/v1/{purpose}".encode()).derive(
        key
    )


def seal(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """Encrypt with AES-256-GCM under a fresh random nonce; returns (nonce, ciphertext+tag)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes, *, what: str) -> bytes:
    """Decrypt and authenticate; a wrong key, an edit or a swapped record raises TamperedCiphertextError."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        raise TamperedCiphertextError(
            f"{what} does not decrypt for its record: the store was edited or a ciphertext was moved "
            "between records; restore the store from a backup"
        ) from None
