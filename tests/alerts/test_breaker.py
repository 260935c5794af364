"""The loop breaker: trips on the (max_repeats + 1)-th identical body within the window, once per episode."""

from __future__ import annotations

from hashlib import blake2b

import pytest

from gatepass.alerts import LoopBreaker, Trip
from gatepass.errors import InvalidInputError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(clock: Clock, window: float = 10, repeats: int = 3, **kwargs: int) -> LoopBreaker:
    return LoopBreaker(window, repeats, clock=clock, **kwargs)


BODY = b'{"model":"claude-haiku","messages":[{"role":"user","content":"again"}]}'


def test_trips_on_the_request_after_max_repeats_within_the_window(clock: Clock) -> None:
    b = breaker(clock)
    for _ in range(3):
        assert b.observe("a", BODY) is None
        clock.now += 1
    trip = b.observe("a", BODY)
    assert isinstance(trip, Trip)
    assert (trip.agent_id, trip.repeats, trip.seconds, trip.retry_after, trip.first) == ("a", 4, 3.0, 10.0, True)
    assert trip.digest == blake2b(BODY, digest_size=16).hexdigest()  # names the loop; the body is not kept


def test_does_not_trip_when_the_repeats_are_spread_out(clock: Clock) -> None:
    b = breaker(clock)
    for _ in range(50):
        assert b.observe("a", BODY) is None
        clock.now += 3.4  # 3 sends span 6.8 s; the 4th comes 10.2 s after the first
    # The boundary: a send exactly one window after the oldest no longer counts that one.
    b2 = breaker(clock)
    for step in (0, 1, 2, 7):
        clock.now += step
        assert b2.observe("a", BODY) is None


def test_different_bodies_and_agents_are_independent(clock: Clock) -> None:
    b = breaker(clock, repeats=2)
    for _ in range(2):
        assert b.observe("a", BODY) is None
        assert b.observe("b", BODY) is None
        assert b.observe("a", BODY + b" ") is None
    assert b.observe("a", BODY) is not None
    assert b.observe("a", b"something else") is None  # the same agent, another body: fine
    assert b.observe("b", BODY) is not None  # b hit its own limit, counted apart from a


def test_stays_tripped_until_a_window_passes_without_a_repeat(clock: Clock) -> None:
    b = breaker(clock)
    for _ in range(3):
        b.observe("a", BODY)
    first = b.observe("a", BODY)
    assert first is not None and first.first

    clock.now += 9.9  # within the window of the last refused repeat: still refused, and extended
    again = b.observe("a", BODY)
    assert again is not None and not again.first
    assert (again.repeats, again.retry_after) == (5, 10.0)
    assert again.seconds == pytest.approx(9.9)

    clock.now += 9.9
    assert b.observe("a", BODY) is not None

    clock.now += 10  # a whole window of silence: cleared, counting starts again
    assert [b.observe("a", BODY) for _ in range(3)] == [None, None, None]
    new_episode = b.observe("a", BODY)
    assert new_episode is not None and new_episode.first and new_episode.repeats == 4


def test_first_is_true_once_per_episode(clock: Clock) -> None:
    b = breaker(clock, repeats=1)
    trips = [b.observe("a", BODY) for _ in range(20)]
    assert trips[0] is None
    assert [t.first for t in trips[1:] if t is not None] == [True] + [False] * 18


def test_an_empty_body_is_never_counted(clock: Clock) -> None:
    b = breaker(clock, repeats=1)
    assert all(b.observe("a", b"") is None for _ in range(10))
    assert len(b) == 0


def test_memory_stays_bounded_with_many_agents(clock: Clock) -> None:
    b = breaker(clock, window=60, repeats=3, max_tracked=1000)
    for i in range(100_000):
        b.observe(f"agent-{i}", BODY)
        assert len(b) <= 1000 or pytest.fail(f"{len(b)} tracked after {i} agents")
        assert i < 1000 or len(b) > 500 or pytest.fail(f"only {len(b)} tracked after {i} agents")


def test_expired_pairs_are_dropped_as_calls_come_in(clock: Clock) -> None:
    b = breaker(clock, window=10, repeats=3)
    for i in range(500):
        b.observe(f"agent-{i}", BODY)
    assert len(b) == 500
    clock.now += 11
    for i in range(500):
        b.observe("busy", BODY + str(i).encode())
    assert len(b) == 500  # the 500 old pairs were drained while 500 new ones came in


def test_a_running_loop_survives_churn_from_other_agents(clock: Clock) -> None:
    b = breaker(clock, window=60, repeats=5, max_tracked=100)
    trips = []
    for i in range(1000):
        b.observe(f"other-{i}", BODY)
        if i % 50 == 0:  # fewer than max_tracked / 2 other pairs between two loop requests
            trips.append(b.observe("looper", BODY))
    assert trips[:5] == [None] * 5
    assert all(t is not None for t in trips[5:])


def test_a_pair_is_held_for_a_window_after_its_last_send_across_generations(clock: Clock) -> None:
    b = breaker(clock, window=10, repeats=2)
    assert b.observe("a", BODY) is None  # t=0: the first generation starts
    clock.now += 4.9
    assert b.observe("a", BODY) is None
    clock.now += 4.9
    trip = b.observe("a", BODY)
    assert trip is not None and trip.first
    clock.now += 0.3
    b.observe("b", BODY)  # t=10.1: a new generation starts; "a" is now in the previous one
    for gap in (9.6, 9.9, 9.9):  # each send 9.9 s after the last one of "a", across generation changes
        clock.now += gap
        trip = b.observe("a", BODY)
        assert trip is not None and not trip.first


def test_a_pair_from_a_quiet_spell_long_ago_starts_afresh(clock: Clock) -> None:
    b = breaker(clock, window=10, repeats=1)
    b.observe("a", BODY)
    clock.now += 10
    assert b.observe("a", BODY) is None  # a whole window later: counting starts again
    assert len(b) == 1  # the old generation went with the quiet spell
    assert b.observe("a", BODY) is not None


def test_a_running_loop_in_the_previous_generation_still_trips(clock: Clock) -> None:
    b = breaker(clock, window=60, repeats=2, max_tracked=10)
    b.observe("looper", BODY)
    b.observe("looper", BODY)
    for i in range(4):  # fills the current generation (5 pairs) without starting another
        b.observe(f"other-{i}", BODY)
    b.observe("other-4", BODY)  # starts a new generation: the loop is now in the previous one
    assert b.observe("looper", BODY) is not None


def test_forget_drops_an_agents_state(clock: Clock) -> None:
    b = breaker(clock, repeats=1)
    b.observe("a", BODY)
    assert b.observe("a", BODY) is not None
    b.observe("b", BODY)
    b.observe("a", b"sent once")
    assert b.forget("a") == 1  # the repeated pair; a pair seen once is not attributed and stays
    assert b.observe("a", BODY) is None
    assert len(b) == 3


@pytest.mark.parametrize(
    ("window", "repeats", "max_tracked", "says"),
    [
        (0, 3, 10, "loop window"),
        (-1, 3, 10, "loop window"),
        (10, 0, 10, "max_repeats"),
        (10, 3, 0, "max_tracked"),
        (10, 3, 1, "2 or more"),
    ],
)
def test_invalid_settings(window: float, repeats: int, max_tracked: int, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        LoopBreaker(window, repeats, max_tracked=max_tracked)


def test_repr_shows_settings_not_bodies(clock: Clock) -> None:
    b = breaker(clock)
    b.observe("a", BODY)
    assert repr(b) == "LoopBreaker(window_seconds=10.0, max_repeats=3, tracked=1)"
    assert (b.window_seconds, b.max_repeats) == (10.0, 3)
