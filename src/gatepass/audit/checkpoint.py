"""Signed checkpoints: an Ed25519 signature over ``(seq, hash, ts, key_id)`` of the chain's head.

A line of ``checkpoints.jsonl`` is the canonical JSON (see :mod:`gatepass.audit.record`) of::

    {"hash": <hash of record seq>, "key_id": <16 hex>, "seq": <int>, "sig": <base64>, "ts": <UTC ts>}

``sig`` signs the canonical encoding of the other four fields. ``key_id`` is the first 16 hex
digits of the SHA-256 of the raw public key, so a verifier can tell "signed by another key"
(``unknown_key``) from "signature does not match" (``bad_signature``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .record import AuditMalformedError, canonical_json

__all__ = [
    "Checkpoint",
    "encode_checkpoint",
    "key_id_of",
    "parse_checkpoint",
    "public_key_bytes",
    "sign_checkpoint",
    "verify_checkpoint",
]

_KEYS: Final = frozenset({"seq", "hash", "ts", "key_id", "sig"})
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_HEX16: Final = re.compile(r"[0-9a-f]{16}")
_TS: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that record ``seq`` of the log has hash ``hash`` (made at ``ts``)."""

    seq: int
    hash: str
    ts: str
    key_id: str
    sig: str

    def signed_bytes(self) -> bytes:
        """The bytes that ``sig`` signs: the canonical encoding of every field but ``sig``."""
        return canonical_json({"seq": self.seq, "hash": self.hash, "ts": self.ts, "key_id": self.key_id})


def public_key_bytes(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(public_key_bytes(public_key)).hexdigest()[:16]


def sign_checkpoint(signing_key: Ed25519PrivateKey, seq: int, hash: str, ts: str) -> Checkpoint:
    """Sign a checkpoint for record ``seq`` whose hash is ``hash``."""
    unsigned = Checkpoint(seq, hash, ts, key_id_of(signing_key.public_key()), "")
    sig = base64.b64encode(signing_key.sign(unsigned.signed_bytes())).decode("ascii")
    return Checkpoint(seq, hash, ts, unsigned.key_id, sig)


def verify_checkpoint(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    """True when ``sig`` is a valid signature by ``public_key`` over the other fields."""
    try:
        public_key.verify(base64.b64decode(checkpoint.sig, validate=True), checkpoint.signed_bytes())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    """The checkpoint's line in ``checkpoints.jsonl``, newline included."""
    fields = {
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "ts": checkpoint.ts,
        "key_id": checkpoint.key_id,
        "sig": checkpoint.sig,
    }
    return canonical_json(fields) + b"\n"


def parse_checkpoint(line: bytes | str, lineno: int | None = None, *, source: str = "checkpoints.jsonl") -> Checkpoint:
    """Parse one checkpoint line strictly (the signature is *not* checked here).

    Raises :class:`~gatepass.audit.record.AuditMalformedError` naming ``source`` and ``lineno``.
    """
    where = f"{source} line {lineno}" if lineno is not None else source
    raw = line.encode("utf-8") if isinstance(line, str) else bytes(line)
    if raw.endswith(b"\n"):
        raw = raw[:-1]

    def bad(detail: str) -> AuditMalformedError:
        return AuditMalformedError(f"{where} is not a valid checkpoint ({detail})", lineno)

    try:
        obj: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("not UTF-8 JSON") from None
    if type(obj) is not dict or set(obj) != _KEYS:
        raise bad("wrong set of fields")
    if type(obj["seq"]) is not int or obj["seq"] < 1:
        raise bad("seq must be a positive integer")
    if not all(type(obj[name]) is str for name in ("hash", "ts", "key_id", "sig")):
        raise bad("hash, ts, key_id and sig must be strings")
    if not _HEX64.fullmatch(obj["hash"]) or not _HEX16.fullmatch(obj["key_id"]):
        raise bad("hash must be 64 and key_id 16 lowercase hex digits")
    if not _TS.fullmatch(obj["ts"]):
        raise bad("ts must look like 2025-01-31T12:00:00.000000Z")
    checkpoint = Checkpoint(**obj)
    if encode_checkpoint(checkpoint) != raw + b"\n":
        raise bad("not in canonical form")
    return checkpoint
