"""Debounced tasks: "make sure one of these runs soon" without one task per caller.

A :class:`DebouncedTask` publishes a Celery task for a key (a tenant) unless one is already
pending: a debounce key set with ``SET NX`` when the task is published and cleared by the task
when it *starts* (:meth:`DebouncedTask.started`) — work committed before the clear is seen by
that run, work committed after it publishes the next. Delayed runs (:meth:`DebouncedTask.wake`)
keep only the earliest wake-up per key. The state lives where ``WAYPOST_COORDINATION`` says
(:func:`in_redis`): in Redis, shared by every process of the deployment, or — for the embedded
demo only, whose broker is in-process — in this process's memory. The setting follows the
broker (``config/settings/coordination.py``) and ``core.checks`` refuses process memory beside
a shared broker: two processes keeping their own copy of a debounce key is the bug where a
drain clears its copy, the API's stays set, and every nudge after the first waits for a sweep.

Publishing never raises: with the broker or Redis down it returns False (and clears what it set,
so the next call tries again); callers have a periodic safety net for that case. After a failed
publish the broker counts as down for ``OUTAGE_SECONDS`` (per process, :class:`Outage`): calls
return False at once instead of each waiting for the broker's connection timeout, which
turned a Redis outage into a two-second API (measured by ``make chaos``, docs/RELIABILITY.md).
Used by the send path's drains (``messaging.send.dispatch``) and by client callbacks
(``callbacks``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import cache

from django.conf import settings

log = logging.getLogger(__name__)

# After a failed publish, calls skip the broker for this long (the safety net covers them).
OUTAGE_SECONDS = 5.0
# A debounce key outlives a lost task by at most this long: a new call publishes again.
PENDING_TTL_SECONDS = 60
# Wake-ups closer together than this are merged.
WAKE_TOLERANCE = 0.05
# A scheduled wake-up due sooner than this counts as already firing (a countdown can run a
# few milliseconds early): a new one is scheduled rather than relying on it.
WAKE_GRACE = 0.25


# --- where the state lives -------------------------------------------------------------------
# It follows the broker, so no two processes of one deployment can disagree: an in-process broker
# (memory://) means one process — the embedded demo, its API and its worker thread — and its
# memory may hold the state; any other broker (Redis, AMQP) means several processes, and the
# state lives in Redis, by default the broker itself when that is Redis. The settings derive
# their defaults with these (imported by config/settings/base.py: no Django access here).

IN_PROCESS_BROKERS = ("memory://",)
REDIS_SCHEMES = ("redis://", "rediss://")
BACKENDS = ("redis", "memory")


def broker_in_process(broker_url: str) -> bool:
    return broker_url.startswith(IN_PROCESS_BROKERS)


def default_redis_url(broker_url: str) -> str:
    """The broker's URL when the broker is Redis, else empty (to be set)."""
    return broker_url if broker_url.startswith(REDIS_SCHEMES) else ""


def default_backend(broker_url: str) -> str:
    return "memory" if broker_in_process(broker_url) else "redis"


def in_redis() -> bool:
    """Whether coordination state (this module's keys, ``core.ratelimit``'s buckets, callback
    wake-ups) lives in Redis, shared by every process; else in this process's memory."""
    return settings.WAYPOST_COORDINATION == "redis"


class Outage:
    """A dependency that just failed, remembered for ``seconds``: callers skip it meanwhile
    rather than each paying its timeout (a per-process circuit breaker)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.until = 0.0

    @property
    def ongoing(self) -> bool:
        return time.monotonic() < self.until

    def failed(self) -> None:
        self.until = time.monotonic() + self.seconds

    def reset(self) -> None:
        """Try the dependency again now (the periodic sweep probes it: it is the recovery)."""
        self.until = 0.0


broker_outage = Outage(OUTAGE_SECONDS)


class DebouncedTask:
    def __init__(
        self, task: str, *, prefix: str, before_publish: Callable[[str], bool] | None = None
    ) -> None:
        self.task = task
        self.prefix = prefix
        self.before_publish = before_publish  # e.g. announce a new queue to the workers

    def nudge(self, *, key: str, queue: str, args: tuple, delay: float = 0.0) -> bool:
        """Make sure a run for ``key`` happens now (or in ``delay`` seconds). False when an
        equivalent run is already pending, or the broker is unreachable."""
        if delay > 0:
            return self.wake(key=key, queue=queue, args=args, delay=delay)
        if broker_outage.ongoing:
            return False
        store, name = get_store(), f"{self.prefix}:{key}"
        try:
            fresh = store.mark_pending(name, ttl=PENDING_TTL_SECONDS)
        except Exception as exc:  # the store is down: publish anyway, duplicates are cheap
            log.warning("%s debounce unavailable (%s); publishing", self.task, type(exc).__name__)
            fresh = True
        if not fresh:
            return False
        if self._publish(queue, args, countdown=None):
            return True
        _forget(store.clear_pending, name)  # let the next call try the broker again
        return False

    def wake(self, *, key: str, queue: str, args: tuple, delay: float) -> bool:
        """A run in ``delay`` seconds (capped at ``WAYPOST_COUNTDOWN_MAX``), unless one is
        already scheduled no later than that."""
        if broker_outage.ongoing:
            return False
        delay = max(0.01, min(delay, settings.WAYPOST_COUNTDOWN_MAX))
        at = time.time() + delay
        store, name = get_store(), f"{self.prefix}:{key}"
        try:
            earliest = store.mark_wake(name, at=at, tolerance=WAKE_TOLERANCE, grace=WAKE_GRACE)
        except Exception as exc:
            log.warning(
                "%s wake-up store unavailable (%s); publishing", self.task, type(exc).__name__
            )
            earliest = True
        if not earliest:
            log.debug("%s wake-up for %s in %.3fs covered by an earlier one", self.task, key, delay)
            return False
        log.debug("%s wake-up for %s in %.3fs", self.task, key, delay)
        if self._publish(queue, args, countdown=delay):
            return True
        _forget(store.clear_wake, name)
        return False

    def started(self, key: str) -> None:
        """Called by the task before it reads: calls from now on publish a new run."""
        _forget(get_store().clear_pending, f"{self.prefix}:{key}")

    def _publish(self, queue: str, args: tuple, *, countdown: float | None) -> bool:
        from celery import current_app as app

        if self.before_publish is not None and not self.before_publish(queue):
            return False
        try:
            app.signature(self.task, args=args, queue=queue).apply_async(
                countdown=countdown, retry=False
            )
        except Exception as exc:  # broker down: the caller's safety net covers it
            log.warning("could not publish %s on %s: %s", self.task, queue, type(exc).__name__)
            broker_outage.failed()
            return False
        return True


def _forget(action, key: str) -> None:
    try:
        action(key)
    except Exception as exc:  # its TTL cleans up
        log.warning("debounce store unavailable (%s)", type(exc).__name__)


class LocalStore:
    """In-process debounce state: the embedded demo (one process: API and worker thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, float] = {}
        self.wakes: dict[str, float] = {}

    def mark_pending(self, key: str, *, ttl: float) -> bool:
        now = time.monotonic()
        with self.lock:
            if self.pending.get(key, 0) > now:
                return False
            self.pending[key] = now + ttl
            return True

    def clear_pending(self, key: str) -> None:
        with self.lock:
            self.pending.pop(key, None)

    def mark_wake(self, key: str, *, at: float, tolerance: float, grace: float) -> bool:
        now = time.time()
        with self.lock:
            current = self.wakes.get(key)
            if current is not None and now + grace < current <= at + tolerance:
                return False
            self.wakes[key] = at
            return True

    def clear_wake(self, key: str) -> None:
        with self.lock:
            self.wakes.pop(key, None)


# KEYS[1] holds the earliest wake-up still to come (epoch seconds); one due within ARGV[4]
# seconds no longer counts as pending.
_WAKE = """
local current = tonumber(redis.call('GET', KEYS[1]))
local at = tonumber(ARGV[1])
local now = tonumber(ARGV[3])
if current and current > now + tonumber(ARGV[4]) and current <= at + tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', math.ceil((at - now) * 1000) + 1000)
return 1
"""


class RedisStore:
    """Debounce state shared by every API and worker process."""

    def __init__(self, url: str) -> None:
        import redis

        # Short timeouts: a dead Redis must not hold an API request for long.
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.wake_script = self.client.register_script(_WAKE)

    def mark_pending(self, key: str, *, ttl: float) -> bool:
        return bool(self.client.set(f"waypost:pending:{key}", 1, nx=True, ex=int(ttl)))

    def clear_pending(self, key: str) -> None:
        self.client.delete(f"waypost:pending:{key}")

    def mark_wake(self, key: str, *, at: float, tolerance: float, grace: float) -> bool:
        args = [repr(at), repr(tolerance), repr(time.time()), repr(grace)]
        return bool(self.wake_script(keys=[f"waypost:wake:{key}"], args=args))

    def clear_wake(self, key: str) -> None:
        self.client.delete(f"waypost:wake:{key}")


@cache
def get_store() -> LocalStore | RedisStore:
    """Redis when coordination state lives there (:func:`in_redis`), else process memory."""
    if in_redis():
        return RedisStore(settings.REDIS_URL)
    return LocalStore()
