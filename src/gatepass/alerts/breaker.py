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

Cost: one digest and O(1) amortised dictionary work per call. State is held for at most
``max_tracked`` pairs: entries whose window has passed are dropped as calls come in, and when
there are still too many, the least recently seen pair is forgotten (its count starts again).
Most bodies are sent once, so a pair seen once is held as its time alone (about 165 bytes with
its table slot, against 330 for a full entry): at the default cap the table stays near 8 MB.
Not thread-safe: use one breaker per event loop.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import blake2b
from typing import Final

from gatepass.errors import InvalidInputError

__all__ = ["LoopBreaker", "Trip"]

# A looping pair stays tracked as long as fewer than this many other pairs come between two of its
# sends: with the default rule (20 in 60 s, so sends about 3 s apart) that holds up to about
# 16,000 distinct requests/s, three times what one gateway process serves. About 8 MB when full.
DEFAULT_MAX_TRACKED: Final = 50_000
_DIGEST_SIZE: Final = 16  # of the digest that names a loop in alerts and audit
_EXPIRE_PER_CALL: Final = 2  # expired entries dropped per call: amortised O(1), and the table drains


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
        if max_tracked < 1:
            raise InvalidInputError(f"invalid loop max_tracked {max_tracked!r}: use a whole number of 1 or more")
        self._window = float(window_seconds)
        self._max_repeats = max_repeats
        self._clock = clock
        self._max_tracked = max_tracked
        # Keys the pairs' digests: nobody can choose bodies whose pairs collide.
        self._hash_key = os.urandom(32)
        # Least recently seen first: the front is always the next entry to expire. A pair seen once
        # is held as the time it was seen; a second send makes it an _Entry.
        self._entries: OrderedDict[int, float | _Entry] = OrderedDict()

    @property
    def window_seconds(self) -> float:
        return self._window

    @property
    def max_repeats(self) -> int:
        return self._max_repeats

    def __len__(self) -> int:
        """How many (agent, body) pairs are tracked now (at most ``max_tracked``)."""
        return len(self._entries)

    def __repr__(self) -> str:
        return f"LoopBreaker(window_seconds={self._window}, max_repeats={self._max_repeats}, tracked={len(self)})"

    def observe(self, agent_id: str, body: bytes) -> Trip | None:
        """Record a request; return a :class:`Trip` if it must be refused as a repeat, else ``None``."""
        if not body:
            return None
        now = self._clock()
        hasher = blake2b(agent_id.encode(), digest_size=8, key=self._hash_key)
        hasher.update(b"\0")
        hasher.update(body)
        key = int.from_bytes(hasher.digest(), "little")
        entries = self._entries
        found = entries.get(key)
        if found is None or now - (found.last if isinstance(found, _Entry) else found) >= self._window:
            entries[key] = now  # new, or a whole window without a repeat: the pair starts afresh
            if found is not None:
                entries.move_to_end(key)  # a new key is inserted last already
            self._evict(now)
            return None
        entry = found if isinstance(found, _Entry) else _Entry(agent_id, found)
        entries[key] = entry
        entries.move_to_end(key)
        trip = self._record(entry, body, now)
        self._evict(now)
        return trip

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

    def _evict(self, now: float) -> None:
        entries = self._entries
        horizon = now - self._window
        for _ in range(_EXPIRE_PER_CALL):
            if not entries:
                return
            oldest = next(iter(entries.values()))
            if (oldest.last if isinstance(oldest, _Entry) else oldest) > horizon:
                break
            entries.popitem(last=False)
        while len(entries) > self._max_tracked:
            entries.popitem(last=False)

    def forget(self, agent_id: str) -> int:
        """Drop every repeated pair of ``agent_id`` (e.g. when its owner resumes it); returns how many.

        Pairs seen once are not attributed to an agent and stay (a count of one). O(tracked).
        """
        keys = [key for key, entry in self._entries.items() if isinstance(entry, _Entry) and entry.agent_id == agent_id]
        for key in keys:
            del self._entries[key]
        return len(keys)
