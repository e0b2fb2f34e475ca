"""The rate limiters: Redis (shared by workers) and in-process behave alike.

Time is an input of a bucket, so the tests hand each limiter a clock they move by hand: the
figures are exact and no test sleeps through a refill. One test per limiter keeps its own clock
(the Redis server's ``TIME``, ``time.monotonic``) and polls until a token comes back."""

import time

import pytest
from django.conf import settings

from core.ratelimit import LocalRateLimiter, RedisRateLimiter

from ..waiting import wait_for

KINDS = ["local", pytest.param("redis", marks=pytest.mark.redis)]


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=KINDS)
def limiter(request, clock):
    if request.param == "redis":
        return RedisRateLimiter(settings.REDIS_URL, clock=clock)
    return LocalRateLimiter(clock=clock)


def key(prefix: str) -> str:
    return f"{prefix}{time.monotonic_ns()}"  # Redis keeps buckets across tests: a fresh one


def test_bucket_grants_the_burst_then_tells_how_long_to_wait(limiter, clock):
    bucket = key("t")
    granted, wait = limiter.acquire(bucket, rate=10, count=8, burst=5)
    assert granted == 5 and wait == pytest.approx(0.3)  # 3 missing at 10/s
    assert limiter.acquire(bucket, rate=10, count=1, burst=5) == (0, pytest.approx(0.1))
    clock.advance(0.25)  # 2.5 tokens back
    granted, wait = limiter.acquire(bucket, rate=10, count=5, burst=5)
    assert granted == 2 and wait == pytest.approx(0.25)  # 0.5 left, 3 missing
    clock.advance(60)
    assert limiter.acquire(bucket, rate=10, count=8, burst=5)[0] == 5  # never more than the burst


def test_pair_limit_allows_the_burst_then_one_per_interval(limiter, clock):
    pair = key("p")  # (binary fractions of a second: the sums below are exact)
    assert [limiter.pair_acquire(pair, interval=0.25, burst=3) for _ in range(3)] == [0, 0, 0]
    assert limiter.pair_acquire(pair, interval=0.25, burst=3) == 0.25
    clock.advance(0.125)
    assert limiter.pair_acquire(pair, interval=0.25, burst=3) == 0.125
    clock.advance(0.125)
    assert limiter.pair_acquire(pair, interval=0.25, burst=3) == 0
    assert limiter.pair_acquire(pair, interval=0.25, burst=3) == 0.25


def test_many_pairs_in_one_call_count_like_one_at_a_time(limiter, clock):
    a, b = key("a"), key("b")
    waits = limiter.pair_acquire_many([a, b, a, a], interval=0.25, burst=2)
    assert waits == [0, 0, 0, 0.25]  # `a` a third time must wait
    assert limiter.pair_acquire_many([], interval=0.25, burst=2) == []
    clock.advance(0.25)
    assert limiter.pair_acquire_many([a, b], interval=0.25, burst=2) == [0, 0]


def test_spending_on_credit_holds_the_next_spend_until_the_debt_is_repaid(limiter, clock):
    credit = key("c")
    assert limiter.spend(credit, rate=10, burst=5, cost=8, need=1) == (True, 0.0)  # 5 - 8 = -3
    granted, wait = limiter.spend(credit, rate=10, burst=5, cost=1, need=1)
    assert not granted and wait == pytest.approx(0.4)  # from -3 up to 1 at 10/s
    clock.advance(0.39)
    assert limiter.spend(credit, rate=10, burst=5, cost=1, need=1)[0] is False
    clock.advance(0.02)
    assert limiter.spend(credit, rate=10, burst=5, cost=1, need=1)[0] is True


@pytest.mark.parametrize("kind", KINDS)
def test_on_its_own_clock_a_bucket_refills_as_time_passes(kind):
    limiter = RedisRateLimiter(settings.REDIS_URL) if kind == "redis" else LocalRateLimiter()
    bucket = key("r")
    assert limiter.acquire(bucket, rate=20, count=1, burst=1)[0] == 1
    wait_for(
        lambda: limiter.acquire(bucket, rate=20, count=1, burst=1)[0] == 1,
        5,
        "the bucket's token back after 1/20 s",
    )
