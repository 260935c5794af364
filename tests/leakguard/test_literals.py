"""The sampled matcher finds exactly what a naive search finds: every occurrence, overlapping ones too."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatepass.leakguard.literals import PHASE, LiteralMatcher


def naive(literals: list[bytes], data: bytes) -> set[tuple[int, int]]:
    found = set()
    for index, literal in enumerate(literals):
        at = data.find(literal)
        while at >= 0:
            found.add((index, at))
            at = data.find(literal, at + 1)
    return found


CONFIGS = [(4, 2, 1), (8, 1), (1,)]


@settings(max_examples=200, deadline=None)
@given(
    literals=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8, unique=True),
    noise=st.lists(st.binary(max_size=30), max_size=8),
    picks=st.lists(st.integers(min_value=0), max_size=8),
)
def test_same_as_a_naive_search(literals: list[bytes], noise: list[bytes], picks: list[int]) -> None:
    data = b"".join(n + literals[p % len(literals)] for n, p in zip(noise, picks, strict=False))
    for strides in CONFIGS:
        found = LiteralMatcher(literals, strides=strides).find(data)
        assert len(found) == len(set(found))
        assert set(found) == naive(literals, data), strides


@pytest.mark.parametrize("strides", CONFIGS)
def test_overlapping_and_adjacent_occurrences(strides: tuple[int, ...]) -> None:
    unit = secrets.token_hex(3).encode()  # 6 bytes
    literal = unit * 4  # periodic: occurrences overlap
    data = b"<" + unit * 7 + b">" + literal + literal
    matcher = LiteralMatcher([literal], strides=strides)
    assert sorted(matcher.find(data)) == sorted(naive([literal], data))
    assert len(matcher.find(data)) == 4 + 1 + 4  # 7 units hold 4 occurrences; the pair holds 5


def test_literals_take_the_largest_stride_their_length_allows() -> None:
    long, middle, short = (secrets.token_bytes(n) for n in (4 * PHASE, 2 * PHASE, 2 * PHASE - 1))
    assert repr(LiteralMatcher([long, middle, short])) == (
        "LiteralMatcher(3 literals; stride 4: 4 windows, stride 2: 2 windows, stride 1: 1 windows)"
    )


def test_bad_literals_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct and non-empty"):
        LiteralMatcher([b"abc", b""])
    with pytest.raises(ValueError, match="distinct and non-empty"):
        LiteralMatcher([b"abc", b"abc"])
    with pytest.raises(ValueError, match="must include 1"):
        LiteralMatcher([b"abc"], strides=(4, 2))
    assert LiteralMatcher([]).find(b"anything") == []
