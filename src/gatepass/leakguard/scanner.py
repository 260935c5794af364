"""`LeakScanner`: known secret values (in their common encodings) and credential formats, in one call.

Vault secrets and canary decoys are literals for a :class:`~gatepass.leakguard.literals.LiteralMatcher`
(every form from :func:`~gatepass.leakguard.variants.encoded_forms`); credential formats come from
:func:`gatepass.credpatterns.iter_formats`. A value shorter than :data:`MIN_SECRET_BYTES` is not
looked for (it would match everywhere): it is listed in :attr:`LeakScanner.skipped` for the caller
to report. Findings name what was found and where, never the value; neither does the repr.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Iterable, Sequence
from typing import Final, NamedTuple

from gatepass.credpatterns import iter_formats
from gatepass.leakguard.literals import LiteralMatcher
from gatepass.leakguard.variants import encoded_forms

__all__ = ["KINDS", "MIN_SECRET_BYTES", "Finding", "LeakScanner", "Skipped", "redact_spans"]

MIN_SECRET_BYTES: Final = 8
KINDS: Final = frozenset({"secret", "canary", "pattern"})


class Finding(NamedTuple):
    """Something that must not leave: what it is and where, never the value itself."""

    kind: str  # "secret" (a vault secret), "canary", or "pattern" (a credential format)
    name: str  # the secret's or canary's name, or the format's, e.g. "aws-access-key-id"
    start: int  # byte offsets of the match in the scanned data
    end: int
    encoding: str  # "raw", "base64", "base64url", "url", "hex" or "json" ("raw" for patterns)


class Skipped(NamedTuple):
    """A value the scanner does not look for, and why (for the caller to log; never the value)."""

    kind: str
    name: str
    reason: str


def redact_spans(data: bytes, spans: Iterable[tuple[int, int, str]]) -> bytes:
    """``data`` with each (start, end, name) span replaced by ``[REDACTED:name]``; overlapping spans
    become one marker that lists their names."""
    out: list[bytes] = []
    pos = 0
    current: tuple[int, int, list[str]] | None = None
    for start, end, name in sorted(spans):
        if current is not None and start < current[1]:
            current = (current[0], max(current[1], end), current[2] if name in current[2] else [*current[2], name])
            continue
        if current is not None:
            out += (data[pos : current[0]], _marker(current[2]))
            pos = current[1]
        current = (start, end, [name])
    if current is not None:
        out += (data[pos : current[0]], _marker(current[2]))
        pos = current[1]
    out.append(data[pos:])
    return b"".join(out)


def _marker(names: list[str]) -> bytes:
    return b"[REDACTED:" + ",".join(names).encode("utf-8") + b"]"


class LeakScanner:
    """Finds vault secrets, canaries and credential formats in bytes. Build once, scan many times
    (from any thread: a built scanner does not change)."""

    __slots__ = ("_counts", "_labels", "_lengths", "_longest", "_matcher", "_patterns", "_skipped")

    def __init__(
        self,
        secrets: Iterable[tuple[str, bytes]] = (),
        canaries: Iterable[tuple[str, bytes]] = (),
        *,
        patterns: bool = True,
    ) -> None:
        labels: dict[bytes, dict[tuple[str, str, str], None]] = {}
        skipped: list[Skipped] = []
        counts = {"secret": 0, "canary": 0}
        for kind, values in (("secret", secrets), ("canary", canaries)):
            for name, value in values:
                if len(value) < MIN_SECRET_BYTES:
                    reason = f"shorter than {MIN_SECRET_BYTES} bytes, so it would match almost anywhere"
                    skipped.append(Skipped(kind, name, reason))
                    continue
                counts[kind] += 1
                for encoding, literal in encoded_forms(value):
                    labels.setdefault(literal, {})[(kind, name, encoding)] = None
        literals = list(labels)
        self._matcher = LiteralMatcher(literals)
        self._labels = tuple(tuple(found) for found in labels.values())
        self._lengths = tuple(len(literal) for literal in literals)
        self._longest = max(self._lengths, default=0)
        self._patterns = patterns
        self._skipped = tuple(skipped)
        self._counts = counts

    def __repr__(self) -> str:
        return (
            f"LeakScanner(secrets={self._counts['secret']}, canaries={self._counts['canary']}, "
            f"skipped={len(self._skipped)}, literals={len(self._lengths)}, patterns={self._patterns})"
        )

    @property
    def longest(self) -> int:
        """Length of the longest literal matched: a stream scanner keeps that many bytes minus one."""
        return self._longest

    @property
    def skipped(self) -> tuple[Skipped, ...]:
        """Secrets and canaries not looked for (too short), with the reason."""
        return self._skipped

    def scan(
        self,
        data: bytes,
        *,
        allow_key: bytes | None = None,
        limit: int | None = None,
        kinds: Collection[str] = KINDS,
    ) -> list[Finding]:
        """Findings in ``data``, sorted by position.

        ``allow_key`` is the caller's own gatepass key: not a finding (every other well-formed key is).
        ``limit`` stops after that many findings (the gateway blocks at the first: ``limit=1``).
        ``kinds`` restricts the search, e.g. ``{"secret"}`` for responses.
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        findings: list[Finding] = []
        if "secret" in kinds or "canary" in kinds:
            for index, start in self._matcher.find(data):
                end = start + self._lengths[index]
                findings += (Finding(k, n, start, end, e) for k, n, e in self._labels[index] if k in kinds)
        if self._patterns and "pattern" in kinds and (limit is None or len(findings) < limit):
            for match in iter_formats(data):
                if allow_key is not None and match.name == "gatepass-key":
                    if hmac.compare_digest(data[match.start : match.end], allow_key):
                        continue
                findings.append(Finding("pattern", match.name, match.start, match.end, "raw"))
                if limit is not None and len(findings) >= limit:
                    break
        findings.sort(key=lambda f: (f.start, f.end))
        return findings if limit is None else findings[:limit]

    def redact(self, data: bytes, findings: Sequence[Finding]) -> bytes:
        """``data`` with every finding's span replaced by ``[REDACTED:name]`` (overlapping spans merged)."""
        return redact_spans(data, ((f.start, f.end, f.name) for f in findings))
