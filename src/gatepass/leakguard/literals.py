"""Every occurrence of many literals in one fast pass: Aho-Corasick over samples of the data.

An automaton steps through every byte it is given, and with thousands of random-looking patterns
even a good one (``ahocorasick_rs``, Rust) spends several nanoseconds a byte, mostly on cache
misses. So a long literal is not searched for directly. With a stride ``k`` such that
``len(literal) // k >= PHASE``, an automaton runs over every ``k``-th byte of the data
(``data[::k]``, a quarter of it for ``k = 4``) looking for ``k`` *windows* of the literal: for each
offset ``o`` in it, one per residue mod ``k``, the ``PHASE`` bytes ``literal[o::k][:PHASE]``. An
occurrence at offset ``s`` puts the window with ``o = -s mod k`` (mod ``k``) whole in the sample, so
nothing is missed; each hit is confirmed by comparing the literal at the one place it could start,
so a chance hit costs one comparison. Windows sit as late in the literal as they fit, in its random
tail: literals that share a prefix (``sk-ant-api03-``) would otherwise share their windows.

Each literal takes the largest stride in ``STRIDES`` that its length allows; every stride in use
costs one pass over its sample, so literals under ``4 * PHASE`` bytes (a secret under 20 bytes, in
raw form) add a pass over half or all of the data. Every automaton reports overlapping
occurrences, so every occurrence of every literal is found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import ahocorasick_rs

__all__ = ["PHASE", "STRIDES", "LiteralMatcher"]

STRIDES: Final = (4, 2, 1)
PHASE: Final = 5  # bytes of each window: enough that random data rarely hits one


def _window_offsets(length: int, stride: int, phase: int) -> list[int]:
    """Where each of a literal's ``stride`` windows starts: one per residue mod ``stride``, each as late
    in the literal as fits (``offset + (phase - 1) * stride < length``)."""
    last = max(length - (phase - 1) * stride - 1, stride - 1)
    return [last - (last - residue) % stride for residue in range(stride)]


class _Tier:
    """The literals searched for at one stride: their windows, and where each window comes from."""

    __slots__ = ("automaton", "origins", "stride")

    def __init__(self, stride: int, windows: dict[bytes, list[tuple[int, int]]]) -> None:
        self.stride = stride
        self.origins = tuple(tuple(hits) for hits in windows.values())  # (literal index, window offset)
        self.automaton = ahocorasick_rs.BytesAhoCorasick(list(windows))


class LiteralMatcher:
    """Finds (literal index, start) of every occurrence of ``literals`` (distinct, non-empty bytes)."""

    __slots__ = ("_literals", "_tiers")

    def __init__(self, literals: Sequence[bytes], *, strides: Sequence[int] = STRIDES, phase: int = PHASE) -> None:
        if not all(literals) or len(set(literals)) != len(literals):
            raise ValueError("literals must be distinct and non-empty")
        if 1 not in strides:
            raise ValueError("strides must include 1, for the shortest literals")
        self._literals = tuple(literals)
        by_stride: dict[int, dict[bytes, list[tuple[int, int]]]] = {}
        largest_first = sorted(strides, reverse=True)
        for index, literal in enumerate(self._literals):
            stride = next(k for k in largest_first if k == 1 or len(literal) // k >= phase)
            windows = by_stride.setdefault(stride, {})
            for offset in _window_offsets(len(literal), stride, phase):
                windows.setdefault(literal[offset::stride][:phase], []).append((index, offset))
        self._tiers = tuple(_Tier(stride, windows) for stride, windows in sorted(by_stride.items(), reverse=True))

    def __repr__(self) -> str:
        tiers = ", ".join(f"stride {t.stride}: {len(t.origins)} windows" for t in self._tiers)
        return f"LiteralMatcher({len(self._literals)} literals; {tiers})"

    def find(self, data: bytes) -> list[tuple[int, int]]:
        """(literal index, start offset) of every occurrence in ``data``, overlapping ones included."""
        found: list[tuple[int, int]] = []
        literals = self._literals
        for tier in self._tiers:
            stride, origins = tier.stride, tier.origins
            sample = data[::stride] if stride > 1 else data
            for window, sample_start, _ in tier.automaton.find_matches_as_indexes(sample, overlapping=True):
                for index, offset in origins[window]:
                    start = sample_start * stride - offset
                    if start >= 0 and data.startswith(literals[index], start):
                        found.append((index, start))
        return found
