"""Rate limits shared by every process: token buckets and GCRA, keyed by any string. The send
path limits each sender's messages/second and each recipient pair (docs/meta-api.md §3.1,
§3.2); the API limits each tenant's requests/second (``tenants.throttling``).

One interface, two implementations, chosen by ``WAYPOST_COORDINATION``
(``core.coordination.in_redis``):

* ``redis`` (production, tests): Lua scripts, atomic across workers, on the process's one Redis
  client (``core.coordination.redis_client``, with its timeouts); time comes from the Redis
  server's clock, so workers with skewed clocks still agree;
* ``memory`` (the embedded demo, one process): the same algorithms in process memory.

Either takes a ``clock`` (a function returning seconds, as ``time.monotonic`` does) in place of
its own: tests move time by hand instead of sleeping through a refill. The Redis limiter then
sends the clock's reading with each call instead of asking the server's ``TIME``.

Why the sender's bucket holds only ``WAYPOST_RATE_BURST_SECONDS`` (0.5) of tokens, not a full
second's: requests granted together reach Meta spread out by queueing and network jitter ``d``,
and Meta's own one-second bucket only absorbs that if ``burst + rate x d <= rate``. A full
second's burst overruns it with any jitter (130429 although we stayed "under the limit").

Neither blocks: a caller learns how many messages may go now and how long the rest must wait,
and reschedules them with a countdown instead of holding a worker slot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Protocol

from core.coordination import RedisScript, in_redis


class RateLimiter(Protocol):
    def acquire(self, key: str, *, rate: float, count: int, burst: float) -> tuple[int, float]:
        """Take up to ``count`` tokens from a bucket refilled at ``rate``/s holding at most
        ``burst``. Returns (granted, seconds until the rest could be granted)."""

    def pair_acquire(self, key: str, *, interval: float, burst: int) -> float:
        """GCRA: one message per ``interval`` s on average, ``burst`` at once. Returns 0.0 when
        allowed (and counts it), else the seconds to wait."""

    def pair_acquire_many(self, keys: list[str], *, interval: float, burst: int) -> list[float]:
        """``pair_acquire`` for each key in turn (the same key twice counts twice), in one
        round trip: a batch's recipients cost one call, not one each."""

    def spend(
        self, key: str, *, rate: float, burst: float, cost: float, need: float
    ) -> tuple[bool, float]:
        """All or nothing, on credit: when the bucket (refilled at ``rate``/s, holding at most
        ``burst``) holds ``need`` tokens, take ``cost`` — which may be more than it holds: the
        bucket goes below zero, and the refill repays that debt before anything else is
        granted. Returns (granted, seconds until it would hold ``need``). Its buckets are not
        ``acquire``'s (a key's tokens are spent through one of the two only)."""


class _Many:
    def pair_acquire_many(self, keys: list[str], *, interval: float, burst: int) -> list[float]:
        return [self.pair_acquire(key, interval=interval, burst=burst) for key in keys]


class LocalRateLimiter(_Many):
    """The buckets in process memory, on ``clock`` (``time.monotonic`` unless given)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.buckets: dict[str, tuple[float, float]] = {}
        self.tat: dict[str, float] = {}
        self.credit: dict[str, tuple[float, float]] = {}  # spend()'s buckets

    def acquire(self, key: str, *, rate: float, count: int, burst: float) -> tuple[int, float]:
        with self.lock:
            now = self.clock()
            tokens, last = self.buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            granted = min(count, int(tokens))
            tokens -= granted
            self.buckets[key] = (tokens, now)
        return granted, _wait(count - granted, tokens, rate)

    def pair_acquire(self, key: str, *, interval: float, burst: int) -> float:
        with self.lock:
            now = self.clock()
            tat = max(self.tat.get(key, now), now)
            allow_at = tat - (burst - 1) * interval
            if allow_at > now:
                return allow_at - now
            self.tat[key] = tat + interval
            return 0.0

    def spend(
        self, key: str, *, rate: float, burst: float, cost: float, need: float
    ) -> tuple[bool, float]:
        with self.lock:
            now = self.clock()
            tokens, last = self.credit.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            granted = tokens >= need
            self.credit[key] = (tokens - cost if granted else tokens, now)
        return granted, 0.0 if granted else (need - tokens) / rate


def _wait(missing: int, tokens: float, rate: float) -> float:
    return 0.0 if missing <= 0 else (missing - tokens) / rate


# Each script's last argument, when present, is the time to use (a limiter given a ``clock``);
# without it the server's ``TIME``.
_BUCKET = RedisScript("""
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local rate = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate)
local granted = math.min(count, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], 60)
return {granted, tostring(tokens)}
""")

_GCRA = RedisScript("""
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local waits = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local allow_at = tat - (burst - 1) * interval
  if allow_at > now then
    waits[i] = tostring(allow_at - now)
  else
    redis.call('SET', key, tat + interval, 'EX', math.ceil(burst * interval) + 60)
    waits[i] = '0'
  end
end
return waits
""")

_SPEND = RedisScript("""
local now = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local need = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate)
local granted = 0
if tokens >= need then
  tokens = tokens - cost
  granted = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 60)
return {granted, tostring(tokens)}
""")


class RedisRateLimiter:
    """The buckets in Redis, on the process's client for ``url`` (default ``REDIS_URL``:
    ``core.coordination.redis_client``); it holds no connection of its own. Time is the Redis
    server's, unless a ``clock`` is given."""

    def __init__(self, url: str | None = None, *, clock: Callable[[], float] | None = None) -> None:
        self.url = url
        self.clock = clock

    def _now(self) -> list[str]:
        """The scripts' optional last argument: the clock's reading, or nothing (``TIME``)."""
        return [] if self.clock is None else [repr(self.clock())]

    def acquire(self, key: str, *, rate: float, count: int, burst: float) -> tuple[int, float]:
        granted, tokens = _BUCKET(
            keys=[f"waypost:rl:{key}"], args=[rate, count, burst, *self._now()], url=self.url
        )
        return int(granted), _wait(count - int(granted), float(tokens), rate)

    def pair_acquire(self, key: str, *, interval: float, burst: int) -> float:
        return self.pair_acquire_many([key], interval=interval, burst=burst)[0]

    def pair_acquire_many(self, keys: list[str], *, interval: float, burst: int) -> list[float]:
        if not keys:
            return []
        waits = _GCRA(
            keys=[f"waypost:pair:{k}" for k in keys],
            args=[interval, burst, *self._now()],
            url=self.url,
        )
        return [float(w) for w in waits]

    def spend(
        self, key: str, *, rate: float, burst: float, cost: float, need: float
    ) -> tuple[bool, float]:
        granted, tokens = _SPEND(
            keys=[f"waypost:credit:{key}"],
            args=[rate, burst, cost, need, *self._now()],
            url=self.url,
        )
        return bool(granted), 0.0 if granted else (need - float(tokens)) / rate


@cache
def get_rate_limiter() -> RateLimiter:
    if in_redis():
        return RedisRateLimiter()
    return LocalRateLimiter()
