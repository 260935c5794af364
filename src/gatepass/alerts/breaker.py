"""The runaway-loop breaker: refuse an agent that keeps sending the same request body.

The rule, per (agent, body) pair, pairs told apart by a keyed 64-bit BLAKE2b digest of the agent and
the body (the body itself is never kept):

* An agent may send the same body ``max_repeats`` times within any ``window_seconds``; the next
  identical request inside the window trips the breaker and is refused.
* While tripped, every further identical request is refused too, and pushes the end of the
  episode to ``window_seconds`` after it: the pair clears once a whole window passes with no
  repeat (``Trip.retry_after`` says how long from now). Then counting starts afresh.
* A different body from the same agent, and the same body from another agent, are independent.
* An empty body (a GET, a poll) is never counted: pass bytes that identify the request, for
  example the method and path followed by the body, if those should count as well.

:meth:`LoopBreaker.observe` returns a :class:`Trip` for each refused request; ``Trip.first`` is
true only for the request that opened the episode, so the caller alerts once per episode.

Cost: one digest and O(1) dictionary work per call. State is held in two generations: the pairs
seen since the current one started, and those of the one before. A new generation starts once a
window has passed or the current one holds ``max_tracked / 2`` pairs; the one before it is then
dropped whole, so a pair stays tracked for at least a window after its last send unless more than
``max_tracked / 2`` other pairs come in between. Most bodies are sent once, so a pair seen once is
held as its time alone: about 110 bytes with its table slot, 5.5 MB at the default cap. Dropping
a generation whole frees its memory in one piece, so the process does not fragment as pairs churn
(an LRU table of the same pairs took twice the memory and went on growing under load).
Not thread-safe: use one breaker per event loop.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import blake2b
from typing import Final

from gatepass.errors import InvalidInputError

__all__ = ["LoopBreaker", "Trip"]

# A looping pair stays tracked as long as fewer than half this many other pairs come between two of
# its sends: with the default rule (20 in 60 s, so sends about 3 s apart) that holds up to about
# 8,000 distinct requests/s, more than one gateway process serves. About 5.5 MB when full.
DEFAULT_MAX_TRACKED: Final = 50_000
_DIGEST_SIZE: Final = 16  # of the digest that names a loop in alerts and audit


@dataclass(frozen=True, slots=True)
class Trip:
    """A refused repeat: ``repeats`` identical requests in ``seconds``, clear in ``retry_after`` s."""

    agent_id: str
    digest: str  # hex BLAKE2b-128 of the body: names the loop in alerts and audit, reveals nothing
    repeats: int  # identical requests in this episode, counting the refused ones and this one
    seconds: float  # from the first of those requests to this one
    retry_after: float  # seconds from now until the pair clears, if no identical request comes
    first: bool  # true for the request that opened the episode: alert on this one only


class _Entry:
    """State of one (agent, body) pair sent more than once."""

    __slots__ = ("agent_id", "count", "last", "started", "times", "tripped")

    def __init__(self, agent_id: str, first: float) -> None:
        self.agent_id = agent_id
        self.times: list[float] = [first]  # sends within the window, oldest first; at most max_repeats
        self.last = first  # time of the latest identical request (sets when the pair expires)
        self.tripped = False
        self.started = 0.0  # first request counted in the current episode
        self.count = 0  # identical requests in the current episode


class LoopBreaker:
    """Counts identical request bodies per agent in a sliding window; see the module docstring."""

    def __init__(
        self,
        window_seconds: float,
        max_repeats: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = DEFAULT_MAX_TRACKED,
    ) -> None:
        if not window_seconds > 0:
            raise InvalidInputError(f"invalid loop window {window_seconds!r}: use a number of seconds above 0, e.g. 60")
        if max_repeats < 1:
            raise InvalidInputError(
                f"invalid loop max_repeats {max_repeats!r}: use a whole number of 1 or more, e.g. 20"
            )
        if max_tracked < 2:
            raise InvalidInputError(f"invalid loop max_tracked {max_tracked!r}: use a whole number of 2 or more")
        self._window = float(window_seconds)
        self._max_repeats = max_repeats
        self._clock = clock
        self._generation_size = max_tracked // 2
        # Keys the pairs' digests: nobody can choose bodies whose pairs collide.
        self._hash_key = os.urandom(32)
        # Pair digest -> state. A pair seen once is held as the time it was seen; a second send makes
        # it an _Entry. Every pair in the current generation was sent since _since; a pair found in
        # the previous one moves to the current one.
        self._current: dict[int, float | _Entry] = {}
        self._previous: dict[int, float | _Entry] = {}
        self._since = -math.inf  # when the current generation started
        self._latest = -math.inf  # the latest call: no pair held was seen after it

    @property
    def window_seconds(self) -> float:
        return self._window

    @property
    def max_repeats(self) -> int:
        return self._max_repeats

    def __len__(self) -> int:
        """How many (agent, body) pairs are tracked now (at most ``max_tracked``)."""
        return len(self._current) + len(self._previous)

    def __repr__(self) -> str:
        return f"LoopBreaker(window_seconds={self._window}, max_repeats={self._max_repeats}, tracked={len(self)})"

    def observe(self, agent_id: str, body: bytes) -> Trip | None:
        """Record a request; return a :class:`Trip` if it must be refused as a repeat, else ``None``."""
        if not body:
            return None
        now = self._clock()
        if now - self._since >= self._window or len(self._current) >= self._generation_size:
            self._next_generation(now)
        self._latest = now
        hasher = blake2b(agent_id.encode(), digest_size=8, key=self._hash_key)
        hasher.update(b"\0")
        hasher.update(body)
        key = int.from_bytes(hasher.digest(), "little")
        current = self._current
        found = current.get(key)
        if found is None:
            found = self._previous.pop(key, None)
        if found is None or now - (found.last if isinstance(found, _Entry) else found) >= self._window:
            current[key] = now  # new, or a whole window without a repeat: the pair starts afresh
            return None
        entry = found if isinstance(found, _Entry) else _Entry(agent_id, found)
        current[key] = entry
        return self._record(entry, body, now)

    def _next_generation(self, now: float) -> None:
        # The previous generation is dropped. The current one becomes the previous one, unless even
        # its latest pair is a window old (after a quiet spell): then nothing held is still live.
        self._previous = self._current if now - self._latest < self._window else {}
        self._current = {}
        self._since = now

    def _record(self, entry: _Entry, body: bytes, now: float) -> Trip | None:
        entry.last = now
        times = entry.times
        if entry.tripped:
            entry.count += 1
            return self._trip(entry, body, now, first=False)
        horizon = now - self._window
        stale = 0
        while stale < len(times) and times[stale] <= horizon:  # at most max_repeats steps
            stale += 1
        if stale:
            del times[:stale]
        if len(times) < self._max_repeats:
            times.append(now)
            return None
        entry.tripped = True
        entry.started = times[0]
        entry.count = len(times) + 1
        times.clear()
        return self._trip(entry, body, now, first=True)

    def _trip(self, entry: _Entry, body: bytes, now: float, *, first: bool) -> Trip:
        return Trip(
            agent_id=entry.agent_id,
            digest=blake2b(body, digest_size=_DIGEST_SIZE).hexdigest(),
            repeats=entry.count,
            seconds=now - entry.started,
            retry_after=self._window,
            first=first,
        )

    def forget(self, agent_id: str) -> int:
        """Drop every repeated pair of ``agent_id`` (e.g. when its owner resumes it); returns how many.

        Pairs seen once are not attributed to an agent and stay (a count of one). O(tracked).
        """
        dropped = 0
        for entries in (self._current, self._previous):
            keys = [key for key, entry in entries.items() if isinstance(entry, _Entry) and entry.agent_id == agent_id]
            for key in keys:
                del entries[key]
            dropped += len(keys)
        return dropped
