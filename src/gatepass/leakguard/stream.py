"""`StreamRedactor`: redact a stream (a response body) chunk by chunk, catching values split across chunks.

Each call scans what it holds back plus the new chunk. Bytes that a match could still reach from the
next chunk (the last ``longest - 1``) stay held; the rest goes out, redacted. When a match reaches
past that point, the output runs to the match's end, and the held bytes that were already sent
(inside that match's marker) are remembered, so a second match that starts under the marker and ends
in a later chunk is still cut off where it begins to show.
"""

from __future__ import annotations

from collections.abc import Collection

from gatepass.leakguard.scanner import LeakScanner, redact_spans

__all__ = ["StreamRedactor"]


class StreamRedactor:
    """Feed chunks, send what comes back, then send :meth:`flush`. Redacts vault secrets by default."""

    __slots__ = ("_done", "_held", "_hold", "_kinds", "_scanner", "redacted")

    def __init__(self, scanner: LeakScanner, *, kinds: Collection[str] = ("secret",)) -> None:
        self._scanner = scanner
        self._kinds = frozenset(kinds)
        self._hold = max(scanner.longest - 1, 0)
        self._held = b""
        self._done = 0  # how many of the held bytes were already sent (inside a marker)
        self.redacted = 0  #: findings replaced so far

    def feed(self, chunk: bytes) -> bytes:
        """The redacted bytes that can go out now (possibly empty)."""
        return self._emit(chunk, final=False)

    def flush(self) -> bytes:
        """The rest, redacted; the redactor is empty afterwards and can take a new stream."""
        return self._emit(b"", final=True)

    def _emit(self, chunk: bytes, *, final: bool) -> bytes:
        data = self._held + chunk
        done = self._done
        keep = len(data) if final else max(len(data) - self._hold, 0)  # matches starting before it are whole
        cut = max(keep, done)
        spans = []
        for f in self._scanner.scan(data, kinds=self._kinds):  # sorted by start
            if f.end > done and f.start < cut:
                cut = max(cut, f.end)
                spans.append((max(f.start, done) - done, f.end - done, f.name))
        self.redacted += len(spans)
        out = redact_spans(data[done:cut], spans)
        self._held = data[keep:]
        self._done = cut - keep
        return out
