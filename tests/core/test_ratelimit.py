"""The rate limiters: Redis (shared by workers) and in-process behave alike."""

import time

import pytest
from django.conf import settings

from core.ratelimit import LocalRateLimiter, RedisRateLimiter


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def limiter(request):
    if request.param == "redis":
        return RedisRateLimiter(settings.REDIS_URL)
    return LocalRateLimiter()


def test_bucket_grants_the_burst_then_tells_how_long_to_wait(limiter):
    key = f"t{time.monotonic_ns()}"
    granted, wait = limiter.acquire(key, rate=10, count=8, burst=5)
    assert granted == 5 and 0.25 < wait <= 0.31
    assert limiter.acquire(key, rate=10, count=1, burst=5)[0] == 0
    time.sleep(0.25)
    assert limiter.acquire(key, rate=10, count=5, burst=5)[0] == 2


def test_pair_limit_allows_the_burst_then_one_per_interval(limiter):
    key = f"p{time.monotonic_ns()}"
    assert [limiter.pair_acquire(key, interval=0.2, burst=3) for _ in range(3)] == [0, 0, 0]
    wait = limiter.pair_acquire(key, interval=0.2, burst=3)
    assert 0.15 < wait <= 0.2
    time.sleep(wait + 0.01)
    assert limiter.pair_acquire(key, interval=0.2, burst=3) == 0


def test_many_pairs_in_one_call_count_like_one_at_a_time(limiter):
    a, b = f"a{time.monotonic_ns()}", f"b{time.monotonic_ns()}"
    waits = limiter.pair_acquire_many([a, b, a, a], interval=0.2, burst=2)
    assert waits[:3] == [0, 0, 0] and 0.15 < waits[3] <= 0.21  # `a` a third time must wait
    assert limiter.pair_acquire_many([], interval=0.2, burst=2) == []
