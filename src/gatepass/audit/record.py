"""Audit events and records, and their one canonical encoding.

An :class:`AuditEvent` is what a caller hands to the log; an :class:`AuditRecord` is the event as
it sits in the chain: numbered, timestamped and linked to the record before it by a SHA-256 hash.

Canonical encoding (the bytes that are hashed and written)::

    body = JSON of every field but "hash", keys sorted, separators (",", ":"),
           ensure_ascii=False, no NaN/Infinity, UTF-8
    hash = SHA-256 hex of body
    line = the same canonical JSON of every field *including* "hash", then "\\n"

Parsing is strict: a line must be exactly the canonical encoding of a well-typed record, so two
different byte strings never stand for the same record.

``meta`` holds plain JSON values only (exact ``str``, ``int``, ``float``, ``bool``, ``None``,
``list``, ``dict`` with ``str`` keys). Anything else raises :class:`TypeError` naming only its type:
an unknown object is never turned into text, and a ``str`` subclass (which :mod:`json` would
happily write out) is refused, so a secret wrapper can never leak into the log.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from gatepass.errors import AuditTamperedError

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "AuditMalformedError",
    "AuditRecord",
    "canonical_json",
    "check_event",
    "encode_record",
    "format_ts",
    "make_record",
    "parse_record",
    "parse_record_hashed",
    "record_hash",
    "seal_record",
]

GENESIS_HASH: Final = "0" * 64
"""The ``prev`` of record 1."""

_EVENT_FIELDS: Final = ("actor", "action", "target", "decision", "reason")
_RECORD_KEYS: Final = frozenset({"seq", "ts", "prev", "hash", "meta", *_EVENT_FIELDS})
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_TS: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_SCALARS: Final = (str, int, float, bool, type(None))


class AuditMalformedError(AuditTamperedError):
    """A line of an audit file is not a well-formed record; ``lineno`` is its line (1-based) if known."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno


def _plain(meta: dict[str, object]) -> bool:
    """Every key an exact ``str`` and every value an exact ``str``, ``int`` or ``bool``, or None
    (every request's record). A plain loop: compiled, about six times faster than testing sets of
    types, and a little faster in the interpreter too."""
    for key, value in meta.items():
        if type(key) is not str:
            return False
        kind = type(value)
        if kind is not str and kind is not int and kind is not bool and value is not None:
            return False
    return True


def _check_json(value: object, where: str) -> None:
    """Raise TypeError unless ``value`` is a plain JSON value; the message names types only."""
    if type(value) is float:
        if not math.isfinite(value):
            raise ValueError(f"audit {where}: NaN and infinite floats cannot be recorded")
    elif type(value) is list:
        for item in value:
            _check_json(item, where)
    elif type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"audit {where}: keys must be str, not {type(key).__name__}")
            _check_json(item, where)
    elif type(value) not in _SCALARS:
        raise TypeError(
            f"audit {where}: a value of type {type(value).__name__} cannot be recorded; "
            "use str, int, float, bool, None, list or dict"
        )


def _check_meta(meta: Mapping[str, object]) -> None:
    if _is_flat(meta):  # every request's record: str keys and scalar values other than float
        return
    if not isinstance(meta, Mapping):
        raise TypeError(f"audit meta must be a mapping, not {type(meta).__name__}")
    for key, value in meta.items():
        if type(key) is not str:
            raise TypeError(f"audit meta: keys must be str, not {type(key).__name__}")
        _check_json(value, f"meta[{key[:40]!r}]")


def _check_event_fields(values: tuple[object, ...]) -> None:
    for name, value in zip(_EVENT_FIELDS, values, strict=True):
        if type(value) is not str:
            raise TypeError(f"audit field {name!r} must be a str, not {type(value).__name__}")


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened: who did what to which target, the decision and its reason code.

    Attributes:
        actor: who acted ("admin", an agent name, "gatepass").
        action: what was done, dotted ("agent.create", "key.issue", "request").
        target: what it was done to (an agent, key id, upstream route).
        decision: the outcome ("ok", "allow", "deny").
        reason: machine-readable reason code ("admin", "budget_exhausted").
        meta: extra plain-JSON details; never a secret (see the module docstring).
    """

    actor: str
    action: str
    target: str
    decision: str
    reason: str
    meta: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_event(self)


def check_event(event: AuditEvent | AuditRecord) -> None:
    """Check again that ``event`` can be recorded (its ``meta`` may have been changed in place)."""
    actor, action, target, decision, reason = event.actor, event.action, event.target, event.decision, event.reason
    if (
        type(actor) is not str
        or type(action) is not str
        or type(target) is not str
        or type(decision) is not str
        or type(reason) is not str
    ):
        _check_event_fields((actor, action, target, decision, reason))  # raises, naming the field
    _check_meta(event.meta)


@dataclass(frozen=True)
class AuditRecord:
    """An event in the chain: ``seq`` (1-based, contiguous), ``ts`` (UTC, microseconds, ``Z``),
    ``prev`` (hash of record ``seq - 1``, :data:`GENESIS_HASH` for record 1) and its own ``hash``."""

    seq: int
    ts: str
    actor: str
    action: str
    target: str
    decision: str
    reason: str
    meta: Mapping[str, object]
    prev: str
    hash: str

    @property
    def event(self) -> AuditEvent:
        """The event this record carries."""
        return AuditEvent(self.actor, self.action, self.target, self.decision, self.reason, self.meta)

    def as_dict(self) -> dict[str, object]:
        """Every field, ``hash`` included, as plain JSON-able data."""
        return {**_body(self), "hash": self.hash}


_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Mapping[str, object]) -> bytes:
    """The canonical bytes of a JSON object: sorted keys, no spaces, UTF-8, no NaN."""
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("audit values must be valid Unicode text (a lone surrogate was found)") from None


def _body(record: AuditRecord) -> dict[str, object]:
    check_event(record)
    return {
        "seq": record.seq,
        "ts": record.ts,
        "actor": record.actor,
        "action": record.action,
        "target": record.target,
        "decision": record.decision,
        "reason": record.reason,
        "meta": record.meta,
        "prev": record.prev,
    }


def record_hash(record: AuditRecord) -> str:
    """SHA-256 hex of the canonical encoding of every field but ``hash``."""
    return hashlib.sha256(canonical_json(_body(record))).hexdigest()


def format_ts(moment: datetime) -> str:
    """``2025-01-31T12:00:00.000000Z`` for an aware datetime (converted to UTC)."""
    global _last_second
    if moment.tzinfo is None:
        raise ValueError("audit timestamps need an aware datetime (naive datetimes are ambiguous)")
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # The text up to the second is made once a second: strftime is the slow part.
    second = moment.replace(microsecond=0)
    if second != _last_second[0]:
        _last_second = (second, second.strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_last_second[1]}.{moment.microsecond:06d}Z"


_last_second: tuple[datetime | None, str] = (None, "")


def seal_record(seq: int, ts: str, event: AuditEvent, prev: str) -> tuple[AuditRecord, bytes]:
    """The record for ``event`` at position ``seq`` after the record hashed ``prev``, and its line.

    The writer's fast path: the event was checked when it was made (and the encoder refuses any
    value that is not plain JSON), and the canonical encoding is made once, without ``hash``: that
    is the hashed encoding. In sorted order "hash" comes right before "meta", so the line is that
    encoding with ``"hash":...`` put in front of the first ``,"meta":`` (which is the key's: a quote
    inside an encoded string is always escaped, so those bytes cannot occur in an earlier value).
    """
    encode = _fast_canonical_json if _is_flat(event.meta) else canonical_json
    body = encode(
        {
            "action": event.action,
            "actor": event.actor,
            "decision": event.decision,
            "meta": event.meta,
            "prev": prev,
            "reason": event.reason,
            "seq": seq,
            "target": event.target,
            "ts": ts,
        }
    )
    digest = hashlib.sha256(body).hexdigest()
    cut = body.index(_META_KEY)
    line = b"".join((body[:cut], b',"hash":"', digest.encode("ascii"), b'"', body[cut:], b"\n"))
    record = AuditRecord(
        seq, ts, event.actor, event.action, event.target, event.decision, event.reason, event.meta, prev, digest
    )
    return record, line


_META_KEY: Final = b',"meta":'


def _is_flat(meta: Mapping[str, object]) -> bool:
    """A dict of str keys and str, int, bool or None values (every request's record)."""
    return type(meta) is dict and _plain(meta)


_SORTED: Final = orjson.OPT_SORT_KEYS


def _fast_canonical_json(value: dict[str, object]) -> bytes:
    """:func:`canonical_json` by orjson, for a dict of str keys whose values are exactly str, int,
    bool, None or a flat dict of those (see :func:`_is_flat`); for these orjson writes the same
    bytes: keys sorted by code point, no spaces, the same escapes, UTF-8. What orjson refuses
    (an integer beyond 64 bits, a lone surrogate) goes to :func:`canonical_json`, which decides."""
    try:
        return orjson.dumps(value, option=_SORTED)
    except orjson.JSONEncodeError:
        return canonical_json(value)


def make_record(seq: int, ts: str, event: AuditEvent, prev: str) -> AuditRecord:
    """Build the record for ``event`` at position ``seq`` after the record whose hash is ``prev``."""
    return seal_record(seq, ts, event, prev)[0]


def encode_record(record: AuditRecord) -> bytes:
    """The record's line in ``audit.jsonl``: canonical JSON with ``hash``, then a newline."""
    body = _body(record)
    body["hash"] = record.hash
    return canonical_json(body) + b"\n"


def _where(source: str, lineno: int | None, offset: int | None) -> str:
    if lineno is not None:
        return f"{source} line {lineno}"
    if offset is not None:
        return f"{source} at byte {offset}"
    return source


def parse_record(
    line: bytes | str, lineno: int | None = None, *, source: str = "audit.jsonl", offset: int | None = None
) -> AuditRecord:
    """Parse one line (with or without its newline) back into a record, strictly.

    Raises :class:`AuditMalformedError` naming ``source`` and ``lineno`` (or ``offset``) when the
    line is not the canonical encoding of a well-typed record. The hash is *not* checked here:
    that is :func:`gatepass.audit.verify.verify`'s job.
    """
    return parse_record_hashed(line, lineno, source=source, offset=offset)[0]


def parse_record_hashed(
    line: bytes | str, lineno: int | None = None, *, source: str = "audit.jsonl", offset: int | None = None
) -> tuple[AuditRecord, str]:
    """:func:`parse_record`, plus the hash the record's content really has (the verifier's fast path)."""
    where = _where(source, lineno, offset)
    raw = line.encode("utf-8") if isinstance(line, str) else bytes(line)
    if raw.endswith(b"\n"):
        raw = raw[:-1]

    def bad(detail: str) -> AuditMalformedError:
        return AuditMalformedError(
            f"{where} is not a valid audit record ({detail}); run `gatepass audit verify` to locate damage",
            lineno,
        )

    try:
        obj: Any = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        raise bad("not UTF-8 JSON") from None
    if type(obj) is not dict:
        raise bad("not a JSON object")
    if set(obj) != _RECORD_KEYS:
        raise bad("wrong set of fields")
    if type(obj["seq"]) is not int or obj["seq"] < 1:
        raise bad("seq must be a positive integer")
    for name in ("ts", "prev", "hash", *_EVENT_FIELDS):
        if type(obj[name]) is not str:
            raise bad(f"{name} must be a string")
    if not _TS.fullmatch(obj["ts"]):
        raise bad("ts must look like 2025-01-31T12:00:00.000000Z")
    if not _HEX64.fullmatch(obj["prev"]) or not _HEX64.fullmatch(obj["hash"]):
        raise bad("prev and hash must be 64 lowercase hex digits")
    if type(obj["meta"]) is not dict:
        raise bad("meta must be an object")
    if canonical_json(obj) != raw:  # parsed JSON holds plain JSON values only: no check needed
        raise bad("not in canonical form")
    record = AuditRecord(**obj)
    del obj["hash"]
    return record, hashlib.sha256(canonical_json(obj)).hexdigest()


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed")
