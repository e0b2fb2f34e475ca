"""Coordination between the processes of a deployment: one doorbell, one Redis client.

Doorbells
---------
Three queues keep their work in the database and have a consumer that must be woken when there
is some: a tenant's due messages (the drains, ``messaging.send.dispatch``), stored webhook
deliveries (``webhooks.services``) and callback events (the deliverer, ``callbacks.deliverer``).
Each has a :class:`Doorbell`, rung by whoever committed work, after the commit. The database
says *what* is to be done; a ring only says *look now*.

* **One pending ring per key.** :meth:`Doorbell.ring` records a ring for its key (a tenant, or
  none) unless one is already pending, so a burst of rings costs one wake-up, not one per
  caller. The consumer clears it when it *starts*, before it reads: work committed before the
  clear is seen by that run, work committed after it rings again.
* **Held.** A run that may do nothing for now (a drain whose tenant has its limit of batches
  in flight) holds the ring instead of clearing it (:meth:`Doorbell.hold`): rings stay pending
  until whoever ends that state ends the hold (:meth:`Doorbell.release`) and reads, or its
  seconds pass.
* **Who answers.** A bell with a ``task`` publishes that Celery task on a fresh ring (on the
  ring's ``queue``, with its ``args``; ``linger`` seconds later, so what arrives meanwhile is
  answered by the same run), and the task calls :meth:`Doorbell.answered` as it starts. A bell
  without a task is answered by a process blocked in :meth:`Doorbell.wait`. A ``background``
  bell publishes from a thread of the ringing process, so the ringer never waits on the broker
  (the webhook endpoint: a dead broker must not cost a delivery its connection timeout).
* **Later.** ``ring(key, delay=s)`` (a task bell): a run in ``s`` seconds, capped at
  ``WAYPOST_COUNTDOWN_MAX`` (a longer wait is a chain of them); only the earliest pending one
  per key is published.
* **Never raises, never waits long.** With the broker or Redis down a ring returns False, and
  clears what it set, so the next ring tries again. After a failed publish the broker counts as
  down for ``OUTAGE_SECONDS`` (:class:`Outage`, per process), after a failed Redis call the
  store does: rings skip it at once instead of each paying a connection timeout — which
  turned a Redis outage into a two-second API (``make chaos``, docs/RELIABILITY.md). Without
  the store a task bell publishes anyway (a duplicate run is cheap); a waiting consumer polls.
* **A lost ring is recovered.** A pending ring outlives a lost run by ``PENDING_TTL_SECONDS``
  at most, a ring whose publish failed is cleared at once, and every consumer has a safety net
  that needs no ring — so nothing is lost, and without a failure nothing waits for it:

  =============  ==========  ====================================  ==============================
  Bell           Key         Answered by                           Safety net
  =============  ==========  ====================================  ==============================
  ``drain``      tenant id   ``messaging.drain`` on the tenant's   the reconciler's sweep
                             queue                                 (``messages_redrive``)
  ``webhooks``   —           ``webhooks.process``, 0.25 s later    its 5-second beat; the
                             (a background bell)                   reconciler's overdue check
  ``callbacks``  —           the deliverer, blocked in ``wait``    its one-second poll
  =============  ==========  ====================================  ==============================

Where the state lives
---------------------
Where ``WAYPOST_COORDINATION`` says (:func:`in_redis`): in Redis, shared by every process of the
deployment, or — for the embedded demo only, whose broker is in-process — in this process's
memory (:class:`LocalStore`; a waiting consumer is then a thread of the same process). The
setting follows the broker and ``core.checks`` refuses process memory beside a shared broker:
two processes keeping their own copy of a pending ring is the bug where a drain clears its
copy, the API's stays set, and every ring after the first waits for a sweep. ``core.ratelimit``
keeps its buckets in the same place.

The Redis client
----------------
One per process, :func:`redis_client`, for every use of Redis outside Celery's own broker
connection: the doorbells, the rate limits (``core.ratelimit``: the send path's, the API
throttle, the webhook refusal budgets). Made on first use with :data:`REDIS_TIMEOUTS`, and
dropped in a forked child (a pre-forking server, Celery's prefork pool), which makes its own.
A ``rediss://`` URL (TLS) is read as kombu reads the broker's, so that one URL serves both
(:func:`_as_redis_py_reads`), and the server's certificate is verified unless the URL says
``ssl_cert_reqs=none`` — for the broker too (:func:`broker_use_ssl`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

# After a failed publish (or Redis call), skip the broker (or Redis) for this long.
OUTAGE_SECONDS = 5.0
# A pending ring outlives a lost run by at most this long: a new ring is fresh again.
PENDING_TTL_SECONDS = 60
# Wake-ups closer together than this are merged.
WAKE_TOLERANCE = 0.05
# A scheduled wake-up due sooner than this counts as already firing (a countdown can run a
# few milliseconds early): a new one is scheduled rather than relying on it.
WAKE_GRACE = 0.25
# The one timeout set of the process's Redis client: every call is short (a ring, a bucket), and
# a dead Redis must not hold an API request, a webhook or a drain for long — each caller has a
# fallback (publish anyway, fail open, its safety net). No retries, for the same reason.
REDIS_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
# A blocking wait is cut into slices shorter than the read timeout.
WAIT_SLICE = 0.25


# --- where the state lives -------------------------------------------------------------------
# It follows the broker, so no two processes of one deployment can disagree: an in-process broker
# (memory://) means one process — the embedded demo, its API and its worker thread — and its
# memory may hold the state; any other broker (Redis, AMQP) means several processes, and the
# state lives in Redis, by default the broker itself when that is Redis. The settings derive
# their defaults with these (imported by config/settings/base.py: no Django access here).

IN_PROCESS_BROKERS = ("memory://",)
# sentinel://: Redis behind Sentinel (failover), as Celery writes it: one URL per sentinel,
# joined by ";" (``sentinel://:password@host1:26379/0;sentinel://host2:26379/0``), and the
# monitored primary's name in REDIS_SENTINEL_MASTER.
REDIS_SCHEMES = ("redis://", "rediss://", "sentinel://")
BACKENDS = ("redis", "memory")


def broker_in_process(broker_url: str) -> bool:
    return broker_url.startswith(IN_PROCESS_BROKERS)


def default_redis_url(broker_url: str) -> str:
    """The broker's URL when the broker is Redis, else empty (to be set)."""
    return broker_url if broker_url.startswith(REDIS_SCHEMES) else ""


def default_backend(broker_url: str) -> str:
    return "memory" if broker_in_process(broker_url) else "redis"


def broker_use_ssl(broker_url: str) -> dict | bool:
    """Celery's ``broker_use_ssl`` for ``broker_url``: with ``rediss://``, TLS with the server's
    certificate verified (against the system's CAs unless the URL names ``ssl_ca_certs``) — what
    redis-py does for the same URL. kombu alone would turn verification off, with a warning, for
    a ``rediss://`` URL without ``ssl_cert_reqs``. The URL's own ``ssl_*`` parameters replace
    this (kombu), and what they leave out is redis-py's default: verified; only an explicit
    ``ssl_cert_reqs=none`` turns verification off. Other brokers: Celery's default, no TLS."""
    if not broker_url.startswith("rediss://"):
        return False
    import ssl

    return {"ssl_cert_reqs": ssl.CERT_REQUIRED}


def in_redis() -> bool:
    """Whether coordination state (the doorbells' rings, ``core.ratelimit``'s buckets) lives
    in Redis, shared by every process; else in this process's memory."""
    return settings.WAYPOST_COORDINATION == "redis"


# --- the one Redis client --------------------------------------------------------------------


def redis_client(url: str | None = None) -> redis.Redis:
    """The process's Redis client for ``url`` (default ``REDIS_URL``, the only one a
    deployment uses): made on first use with :data:`REDIS_TIMEOUTS`, shared by every thread
    (its pool hands each call a connection), dropped in a forked child."""
    return _client(url or settings.REDIS_URL)


@cache
def _client(url: str) -> redis.Redis:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if url.startswith("sentinel://"):
        return _sentinel_primary(url, retry=Retry(NoBackoff(), 0))
    return redis.Redis.from_url(
        _as_redis_py_reads(url), retry=Retry(NoBackoff(), 0), **REDIS_TIMEOUTS
    )


def _as_redis_py_reads(url: str) -> str:
    """``url`` (the broker's, as kombu reads it) for redis-py: kombu takes ``ssl_cert_reqs`` as
    ``required`` or ``CERT_REQUIRED`` (both spellings are Celery's), redis-py only the first —
    the second would make every call of this client fail. Every other URL is left as it is;
    the other ``ssl_*`` parameters (``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, and
    ``ssl_check_hostname`` written ``true`` or ``false``) mean the same to both."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    spelled = [
        (key, value[len("CERT_") :].lower())
        if key == "ssl_cert_reqs" and value.upper().startswith("CERT_")
        else (key, value)
        for key, value in query
    ]
    if spelled == query:
        return url
    return urlunsplit(parts._replace(query=urlencode(spelled, safe="/")))


def _sentinel_primary(url: str, **options) -> redis.Redis:
    """A client of the primary that the sentinels of ``url`` name (``REDIS_SENTINEL_MASTER``):
    each connection asks them where it is, so after a failover the next call reaches the new
    primary."""
    from urllib.parse import unquote, urlsplit

    from redis.sentinel import Sentinel

    parts = [urlsplit(one) for one in url.split(";") if one]
    first = parts[0]
    # The URL's credentials are Redis's (as Celery reads them: percent-decoded); the sentinels'
    # own password, if they have one, is REDIS_SENTINEL_PASSWORD.
    username = unquote(first.username) if first.username else None
    password = unquote(first.password) if first.password else None
    sentinel_kwargs = dict(REDIS_TIMEOUTS)
    if settings.REDIS_SENTINEL_PASSWORD:
        sentinel_kwargs["password"] = settings.REDIS_SENTINEL_PASSWORD
    sentinels = Sentinel(
        [(p.hostname, p.port or 26379) for p in parts], sentinel_kwargs=sentinel_kwargs
    )
    return sentinels.master_for(
        settings.REDIS_SENTINEL_MASTER,
        db=int(first.path.lstrip("/") or 0),
        username=username,
        password=password,
        **REDIS_TIMEOUTS,
        **options,
    )


# A child never uses its parent's sockets: it makes its own client on first use.
os.register_at_fork(after_in_child=_client.cache_clear)


class RedisScript:
    """A Lua script run atomically on the process's client (``EVALSHA``; loaded on first use,
    and again after a Redis restart forgot it)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def __call__(self, *, keys: Sequence[str], args: Sequence[Any] = (), url: str | None = None):
        from redis.exceptions import NoScriptError

        client = redis_client(url)
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)


# --- outages -----------------------------------------------------------------------------------


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
store_outage = Outage(OUTAGE_SECONDS)


# --- the doorbell ------------------------------------------------------------------------------


class Doorbell:
    """ "There is work for you", debounced: see the module's docstring.

    ``name`` prefixes its keys; ``task``: the Celery task that answers it (published on a fresh
    ring), or "" for a bell answered by :meth:`wait`; ``linger``: how long after a fresh ring
    the task runs; ``background``: publish from a thread of this process, not the ringer's;
    ``before_publish(queue)``: called before each publish, False cancels it (the drains
    announce a tenant's queue to the workers)."""

    def __init__(
        self,
        name: str,
        *,
        task: str = "",
        linger: float = 0.0,
        background: bool = False,
        before_publish: Callable[[str], bool] | None = None,
    ) -> None:
        self.name = name
        self.task = task
        self.linger = linger
        self.background = background
        self.before_publish = before_publish

    def ring(
        self, key: str = "", *, queue: str | None = None, args: tuple = (), delay: float = 0.0
    ) -> bool:
        """Make sure the consumer for ``key`` runs now (or, for a task bell, in ``delay``
        seconds). True when this ring woke it (a background bell: handed to its publisher);
        False when a ring was already pending, or the broker or Redis is unreachable (the
        consumer's safety net covers that)."""
        if delay > 0:
            return self._ring_later(key, queue, args, delay)
        if self.task and broker_outage.ongoing:
            return False
        store, name = get_store(), self._key(key)
        fresh = _stored(store.mark_pending, name, ttl=PENDING_TTL_SECONDS)
        if not self.task:
            return bool(fresh)
        if fresh is False:
            return False
        countdown = self.linger if self.linger > 0 else None
        if self.background:
            _publisher.submit(lambda: self._publish_or_forget(queue, args, countdown, name, fresh))
            return True
        return self._publish_or_forget(queue, args, countdown, name, fresh)

    def _publish_or_forget(
        self, queue: str | None, args: tuple, countdown: float | None, name: str, fresh: bool | None
    ) -> bool:
        if self._publish(queue, args, countdown=countdown):
            return True
        if fresh:
            _stored(get_store().clear_pending, name)  # let the next ring try the broker again
        return False

    def hold(self, key: str = "", *, seconds: int) -> None:
        """Instead of :meth:`answered`, by a run that may do nothing for now: rings for ``key``
        stay pending — each would start a run that does nothing — for ``seconds``, or until
        whoever ends that state ends the hold (:meth:`release`) and looks again (the drain's
        back-pressure, ``messaging.send.dispatch.hold``). The run looks once more after the
        hold is set: what ended just before it is seen there."""
        _stored(get_store().hold_pending, self._key(key), ttl=seconds)

    def release(self, key: str = "") -> None:
        """End a hold: the next ring is fresh. A pending ring that is not a hold stays: its
        run is coming, and reads after it started."""
        _stored(get_store().release_hold, self._key(key))

    def answered(self, key: str = "") -> None:
        """Called by the task as it starts, before it reads: rings from now on wake a new
        run."""
        _stored(get_store().clear_pending, self._key(key))

    def wait(self, key: str = "", *, timeout: float) -> bool:
        """Block until the bell rings for ``key`` (True; the ring is answered: the next one is
        fresh) or ``timeout`` seconds pass (False). Never raises: with Redis unreachable it
        waits out the timeout, and the consumer polls."""
        if not store_outage.ongoing:
            rung = _stored(get_store().wait_pending, self._key(key), timeout=timeout)
            if rung is not None:
                return rung
        time.sleep(timeout)
        return False

    def _ring_later(self, key: str, queue: str | None, args: tuple, delay: float) -> bool:
        if not self.task:
            raise ValueError(f"the {self.name} bell has no task to run later")
        if broker_outage.ongoing:
            return False
        delay = max(0.01, min(delay, settings.WAYPOST_COUNTDOWN_MAX))
        store, name = get_store(), self._key(key)
        at = time.time() + delay
        earliest = _stored(store.mark_wake, name, at=at, tolerance=WAKE_TOLERANCE, grace=WAKE_GRACE)
        if earliest is False:
            log.debug("%s wake-up for %s in %.3fs covered by an earlier one", self.name, key, delay)
            return False
        log.debug("%s wake-up for %s in %.3fs", self.name, key, delay)
        if self._publish(queue, args, countdown=delay):
            return True
        if earliest:
            _stored(store.clear_wake, name)
        return False

    def _key(self, key: str) -> str:
        return f"{self.name}:{key}" if key else self.name

    def _publish(self, queue: str | None, args: tuple, *, countdown: float | None) -> bool:
        from celery import current_app as app

        if self.before_publish is not None and queue and not self.before_publish(queue):
            return False
        options: dict[str, Any] = {"countdown": countdown, "retry": False}
        if queue:
            options["queue"] = queue
        try:
            app.signature(self.task, args=args).apply_async(**options)
        except Exception as exc:  # broker down: the consumer's safety net covers it
            log.warning("could not publish %s on %s: %s", self.task, queue, type(exc).__name__)
            broker_outage.failed()
            return False
        return True


class _Publisher:
    """The thread that publishes for background bells, one publish at a time. Started on first
    use (after a pre-forking server forked), again in a forked child."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def submit(self, job: Callable[[], object]) -> None:
        self.jobs.put(job)
        if self.thread is None or not self.thread.is_alive():
            with self.lock:
                if self.thread is None or not self.thread.is_alive():
                    self.thread = threading.Thread(
                        target=self._run, name="doorbell-publisher", daemon=True
                    )
                    self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                job()
            except Exception:  # a publish never raises; anything else is a bug, logged
                log.exception("doorbell publisher")


_publisher = _Publisher()


def _new_publisher() -> None:
    global _publisher
    _publisher = _Publisher()


os.register_at_fork(after_in_child=_new_publisher)


def _stored(operation: Callable, *args: Any, **kwargs: Any) -> Any:
    """``operation``'s answer, or None when the store is unreachable (or was, a moment ago)."""
    if store_outage.ongoing:
        return None
    try:
        return operation(*args, **kwargs)
    except Exception as exc:  # a pending ring's TTL cleans up whatever was left behind
        log.warning("coordination store unavailable (%s)", type(exc).__name__)
        store_outage.failed()
        return None


# --- the stores --------------------------------------------------------------------------------


class LocalStore:
    """In-process state: the embedded demo (one process: API, worker and deliverer threads)."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.pending: dict[str, float] = {}
        self.held: set[str] = set()  # pending rings that are holds (Doorbell.hold)
        self.wakes: dict[str, float] = {}

    def mark_pending(self, key: str, *, ttl: float) -> bool:
        now = time.monotonic()
        with self.changed:
            if self.pending.get(key, 0) > now:
                return False
            self.pending[key] = now + ttl
            self.held.discard(key)  # an expired hold
            self.changed.notify_all()
            return True

    def hold_pending(self, key: str, *, ttl: int) -> None:
        with self.changed:
            self.pending[key] = time.monotonic() + ttl
            self.held.add(key)

    def release_hold(self, key: str) -> None:
        with self.changed:
            if key in self.held:
                self.held.discard(key)
                self.pending.pop(key, None)

    def clear_pending(self, key: str) -> None:
        with self.changed:
            self.pending.pop(key, None)
            self.held.discard(key)

    def wait_pending(self, key: str, *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                now = time.monotonic()
                if self.pending.pop(key, 0) > now:
                    return True
                if now >= deadline:
                    return False
                self.changed.wait(deadline - now)

    def mark_wake(self, key: str, *, at: float, tolerance: float, grace: float) -> bool:
        now = time.time()
        with self.changed:
            current = self.wakes.get(key)
            if current is not None and now + grace < current <= at + tolerance:
                return False
            self.wakes[key] = at
            return True

    def clear_wake(self, key: str) -> None:
        with self.changed:
            self.wakes.pop(key, None)


# KEYS[1], a list of at most one item, is the pending ring; ARGV[1] its TTL in seconds. A list,
# so that a waiting consumer can block on it (BLPOP) and a task's start can clear it (DEL).
# A pending ring is a one-element list (a waiting consumer pops it): "1", or "held" for a hold.
# A ring on a pending one keeps the oldest element, so a hold stays one.
_RING = RedisScript(
    """
if redis.call('LPUSH', KEYS[1], 1) > 1 then
  redis.call('LTRIM', KEYS[1], -1, -1)
  return 0
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
)
# A hold: the ring pending, marked "held", for ARGV[1] seconds from now, whether or not one was.
_HOLD = RedisScript(
    """
redis.call('DEL', KEYS[1])
redis.call('LPUSH', KEYS[1], 'held')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
)
# The end of a hold: the pending ring cleared only if it is a hold (a plain one has a run coming).
_RELEASE = RedisScript(
    """
if redis.call('LINDEX', KEYS[1], -1) == 'held' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
)
# KEYS[1] holds the earliest wake-up still to come (epoch seconds); one due within ARGV[4]
# seconds no longer counts as pending.
_WAKE = RedisScript(
    """
local current = tonumber(redis.call('GET', KEYS[1]))
local at = tonumber(ARGV[1])
local now = tonumber(ARGV[3])
if current and current > now + tonumber(ARGV[4]) and current <= at + tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', math.ceil((at - now) * 1000) + 1000)
return 1
"""
)


class RedisStore:
    """State shared by every API, worker and deliverer process, on the process's client."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url  # None: REDIS_URL

    def mark_pending(self, key: str, *, ttl: float) -> bool:
        return bool(_RING(keys=[f"waypost:ring:{key}"], args=[int(ttl)], url=self.url))

    def hold_pending(self, key: str, *, ttl: int) -> None:
        _HOLD(keys=[f"waypost:ring:{key}"], args=[int(ttl)], url=self.url)

    def release_hold(self, key: str) -> None:
        _RELEASE(keys=[f"waypost:ring:{key}"], url=self.url)

    def clear_pending(self, key: str) -> None:
        redis_client(self.url).delete(f"waypost:ring:{key}")

    def wait_pending(self, key: str, *, timeout: float) -> bool:
        client, deadline = redis_client(self.url), time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) >= 0.01:
            if client.blpop([f"waypost:ring:{key}"], timeout=round(min(remaining, WAIT_SLICE), 2)):
                return True
        return False

    def mark_wake(self, key: str, *, at: float, tolerance: float, grace: float) -> bool:
        args = [repr(at), repr(tolerance), repr(time.time()), repr(grace)]
        return bool(_WAKE(keys=[f"waypost:wake:{key}"], args=args, url=self.url))

    def clear_wake(self, key: str) -> None:
        redis_client(self.url).delete(f"waypost:wake:{key}")


@cache
def get_store() -> LocalStore | RedisStore:
    """Redis when coordination state lives there (:func:`in_redis`), else process memory."""
    if in_redis():
        return RedisStore()
    return LocalStore()
