"""An incremental Server-Sent Events parser: bytes in any split, events out.

It follows the WHATWG event-stream rules: lines end in ``\\r\\n``, ``\\n`` or ``\\r`` (a ``\\r`` at the
end of one chunk and a ``\\n`` at the start of the next are one line end); ``data`` lines join with
``\\n``; lines starting with ``:`` are comments; a blank line ends a block. Every block that held at
least one line is returned, so a caller that forwards events whole (``keep_raw=True``) can pass
comment-only blocks (keep-alives) through as well; ``has_data`` tells which blocks are real events.
A trailing block without its blank line is never returned: ``pending`` holds its bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from gatepass.errors import UpstreamProtocolError

__all__ = ["MAX_EVENT_BYTES", "SseEvent", "SseParser"]

MAX_EVENT_BYTES: Final = 64 * 1024 * 1024
_LINE_END: Final = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One block of the stream. ``raw`` holds its exact bytes (only with ``keep_raw``)."""

    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None
    has_data: bool = True
    raw: bytes = field(default=b"", repr=False)


class SseParser:
    """Feed it chunks; it returns the blocks each chunk completed."""

    def __init__(self, *, keep_raw: bool = False, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._keep_raw = keep_raw
        self._max = max_event_bytes
        self._line = bytearray()  # an incomplete line
        self._raw: list[bytes] = []  # bytes of the current block, with keep_raw
        self._raw_size = 0
        self._skip_lf = False
        self._first_line = True
        self._event: str | None = None
        self._data: list[str] = []
        self._retry: int | None = None
        self._last_id: str | None = None
        self._lines = 0

    @property
    def pending(self) -> bytes:
        """Bytes received that belong to no finished block yet."""
        return b"".join(self._raw) if self._keep_raw else bytes(self._line)

    def feed(self, chunk: bytes) -> list[SseEvent]:
        events: list[SseEvent] = []
        if not chunk:
            return events
        pos = 0
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":  # second half of a \r\n split across chunks
                self._keep(b"\n")
                pos = 1
        for match in _LINE_END.finditer(chunk, pos):
            piece = chunk[pos : match.start()]
            if self._line:
                self._line += piece
                line = bytes(self._line)
                self._line.clear()
            else:
                line = piece
            self._keep(chunk[pos : match.end()])
            pos = match.end()
            event = self._take_line(line)
            if event is not None:
                events.append(event)
        if pos < len(chunk):
            rest = chunk[pos:]
            self._line += rest
            self._keep(rest)
            if len(self._line) > self._max:
                raise UpstreamProtocolError(f"the upstream sent an event stream line over {self._max} bytes")
        elif chunk.endswith(b"\r"):
            self._skip_lf = True
        return events

    def _keep(self, data: bytes) -> None:
        if self._keep_raw:
            self._raw.append(data)
            self._raw_size += len(data)
            if self._raw_size > self._max:
                raise UpstreamProtocolError(f"the upstream sent an event stream block over {self._max} bytes")

    def _take_line(self, line: bytes) -> SseEvent | None:
        if not line:
            if not self._lines:
                return None  # a stray blank line: its bytes lead the next block
            event = SseEvent(
                event=self._event,
                data="\n".join(self._data),
                id=self._last_id,
                retry=self._retry,
                has_data=bool(self._data),
                raw=b"".join(self._raw),
            )
            self._event, self._data, self._retry, self._lines = None, [], None, 0
            self._raw, self._raw_size = [], 0
            return event
        text = line.decode("utf-8", "replace")
        if self._first_line:
            self._first_line = False
            text = text.removeprefix("\ufeff")
        self._lines += 1
        if text.startswith(":"):
            return None
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None
