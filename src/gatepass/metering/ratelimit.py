"""Rate limits per agent and per key: requests per minute, tokens per minute, concurrent requests.

- Requests per minute use GCRA (the generic cell rate algorithm): a limit of N allows a burst of
  N requests and then one every 60/N seconds; a refusal says exactly when the next request fits.
- Tokens per minute use a sliding window (two fixed one-minute windows, the older weighted by the
  part of it still inside the last minute). A request is let in while the window is under the
  limit; its real tokens are added when it settles (the provider reports them only then).
- Concurrency counts requests in flight; a permit gives its slots back when the request ends.

Everything here runs on the event loop without awaiting, so a check and its update are atomic.

State is kept only while it still matters: every few seconds the limiter drops the request
schedules that are already in the past and the token windows that have gone quiet for two minutes
(either is the same as no state). So its memory follows the agents and keys in use lately, not all
that were ever used; with 100,000 keys in turn it had held every one of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gatepass.model import RateLimits

__all__ = ["Permit", "RateDenied", "RateLimiter"]

_WINDOW = 60.0
_PRUNE_EVERY = 5.0  # seconds between sweeps of state that no longer matters


@dataclass(frozen=True, slots=True)
class RateDenied:
    """``kind`` is rpm, tpm or concurrency; ``retry_after`` in seconds (at least 1 for concurrency)."""

    scope: str
    kind: str
    limit: int
    retry_after: float


class Permit:
    """Slots held by one request; :meth:`RateLimiter.release` gives them back (once).

    (A plain class: one is made per request; see :class:`~gatepass.dataplane.exchange.Exchange`.)"""

    __slots__ = ("released", "scopes")

    def __init__(self, scopes: tuple[tuple[str, RateLimits], ...]) -> None:
        self.scopes = scopes
        self.released = False


@dataclass(slots=True)
class _TokenWindow:
    start: float
    current: int = 0
    previous: int = 0

    def roll(self, now: float) -> None:
        elapsed = now - self.start
        if elapsed >= 2 * _WINDOW:
            self.start, self.current, self.previous = now - (elapsed % _WINDOW), 0, 0
        elif elapsed >= _WINDOW:
            self.start, self.previous, self.current = self.start + _WINDOW, self.current, 0

    def estimate(self, now: float) -> float:
        self.roll(now)
        weight = 1.0 - (now - self.start) / _WINDOW
        return self.previous * weight + self.current


@dataclass
class RateLimiter:
    """In-process rate limiter keyed by scope ("agent:<id>", "key:<id>")."""

    clock: Callable[[], float] = time.monotonic
    _tat: dict[str, float] = field(default_factory=dict)
    _tokens: dict[str, _TokenWindow] = field(default_factory=dict)
    _inflight: dict[str, int] = field(default_factory=dict)
    _next_sweep: float = float("-inf")

    def acquire(self, scopes: Sequence[tuple[str, RateLimits]]) -> Permit | RateDenied:
        """Admit one request against every scope's limits, or say which limit refuses it."""
        now = self.clock()
        if now >= self._next_sweep:
            self.sweep(now)
        new_tats: list[tuple[str, float]] = []
        for scope, limits in scopes:
            if limits.concurrency is not None and self._inflight.get(scope, 0) >= limits.concurrency:
                return RateDenied(scope, "concurrency", limits.concurrency, 1.0)
            if limits.rpm is not None:
                interval = _WINDOW / limits.rpm
                tat = max(self._tat.get(scope, now), now)
                allowed_at = tat - (_WINDOW - interval)
                if allowed_at > now:
                    return RateDenied(scope, "rpm", limits.rpm, allowed_at - now)
                new_tats.append((scope, tat + interval))
            if limits.tpm is not None:
                window = self._tokens.get(scope)
                if window is not None and window.estimate(now) >= limits.tpm:
                    return RateDenied(scope, "tpm", limits.tpm, max(1.0, window.start + _WINDOW - now))
        for scope, tat in new_tats:
            self._tat[scope] = tat
        for scope, limits in scopes:
            if limits.concurrency is not None:
                self._inflight[scope] = self._inflight.get(scope, 0) + 1
        return Permit(tuple(scopes))

    def release(self, permit: Permit) -> None:
        if permit.released:
            return
        permit.released = True
        for scope, limits in permit.scopes:
            if limits.concurrency is not None:
                left = self._inflight.get(scope, 1) - 1
                if left > 0:
                    self._inflight[scope] = left
                else:
                    self._inflight.pop(scope, None)

    def add_tokens(self, permit: Permit, tokens: int) -> None:
        """Count a finished request's tokens against the tokens-per-minute windows of its scopes."""
        if tokens <= 0:
            return
        now = self.clock()
        for scope, limits in permit.scopes:
            if limits.tpm is None:
                continue
            window = self._tokens.get(scope)
            if window is None:
                window = self._tokens[scope] = _TokenWindow(now)
            window.roll(now)
            window.current += tokens

    def inflight(self, scope: str) -> int:
        return self._inflight.get(scope, 0)

    def sweep(self, now: float) -> None:
        """Drop what cannot refuse anything any more: a schedule already past (the next request
        fits at once, as for a scope never seen) and a token window quiet for two windows (its
        estimate is zero). The dicts are made anew, so their tables shrink too."""
        self._next_sweep = now + _PRUNE_EVERY
        self._tat = {scope: tat for scope, tat in self._tat.items() if tat > now}
        self._tokens = {scope: w for scope, w in self._tokens.items() if w.start + 2 * _WINDOW > now}

    def tracked(self) -> int:
        """How many scopes have a schedule or a token window."""
        return len(self._tat.keys() | self._tokens.keys())
