from gatepass.metering.ratelimit import Permit, RateDenied, RateLimiter
from gatepass.model import RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rpm_allows_a_burst_then_one_per_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    scopes = [("agent:a", RateLimits(rpm=6))]
    for _ in range(6):
        assert isinstance(limiter.acquire(scopes), Permit)
    denied = limiter.acquire(scopes)
    assert isinstance(denied, RateDenied) and denied.kind == "rpm" and 0 < denied.retry_after <= 10
    clock.now += denied.retry_after
    assert isinstance(limiter.acquire(scopes), Permit)
    assert isinstance(limiter.acquire(scopes), RateDenied)


def test_concurrency_is_released() -> None:
    limiter = RateLimiter(clock=Clock())
    scopes = [("key:k", RateLimits(concurrency=2))]
    first, second = limiter.acquire(scopes), limiter.acquire(scopes)
    assert isinstance(first, Permit) and isinstance(second, Permit)
    third = limiter.acquire(scopes)
    assert isinstance(third, RateDenied) and third.kind == "concurrency"
    limiter.release(first)
    limiter.release(first)  # twice is harmless
    assert limiter.inflight("key:k") == 1
    assert isinstance(limiter.acquire(scopes), Permit)


def test_tpm_window_counts_reported_tokens() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    scopes = [("agent:a", RateLimits(tpm=1000))]
    permit = limiter.acquire(scopes)
    assert isinstance(permit, Permit)
    limiter.add_tokens(permit, 1200)
    denied = limiter.acquire(scopes)
    assert isinstance(denied, RateDenied) and denied.kind == "tpm" and denied.retry_after >= 1
    clock.now += 120  # two windows later everything has expired
    assert isinstance(limiter.acquire(scopes), Permit)


def test_a_refusal_by_one_scope_takes_nothing_from_the_others() -> None:
    limiter = RateLimiter(clock=Clock())
    agent = ("agent:a", RateLimits(rpm=100, concurrency=5))
    key = ("key:k", RateLimits(concurrency=1))
    assert isinstance(limiter.acquire([agent, key]), Permit)
    assert isinstance(limiter.acquire([agent, key]), RateDenied)
    assert limiter.inflight("agent:a") == 1


def test_state_that_no_longer_matters_is_dropped_and_the_limits_still_hold() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    busy = ("key:busy", RateLimits(rpm=2, tpm=100))
    for n in range(1000):
        permit = limiter.acquire([(f"key:{n}", RateLimits(rpm=60, tpm=1000))])
        assert isinstance(permit, Permit)
        limiter.add_tokens(permit, 10)
        limiter.release(permit)
    first = limiter.acquire([busy])
    assert isinstance(first, Permit)
    limiter.add_tokens(first, 100)
    assert limiter.tracked() == 1001
    clock.now += 6  # past every one-a-second schedule, and the next sweep is due
    assert isinstance(limiter.acquire([busy]), RateDenied)  # the busy key's token window still counts
    assert limiter.tracked() == 1001  # the token windows are kept for two minutes
    clock.now += 2 * 60
    assert isinstance(limiter.acquire([busy]), Permit)
    assert isinstance(limiter.acquire([busy]), Permit)
    assert isinstance(limiter.acquire([busy]), RateDenied)  # rpm 2: a burst of two, its schedule kept
    assert limiter.tracked() == 1
