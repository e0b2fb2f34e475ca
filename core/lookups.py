"""Per-process caches for the hot path's lookups: the API key behind a request, the template and
sender of a send. Every single send needed them from the database — two of its four round trips
(bench/NOTES.md, issue 21) — though they change a few times a day.

The rules, for every cache made here:

* **Bounded staleness.** An entry is used for at most ``WAYPOST_LOOKUP_CACHE_SECONDS`` (1 s by
  default; 0 turns every cache off — the test settings do, except where a test is about a
  cache) after it was read from the database; then it is read again. A key revoked, a tenant
  deactivated or a template paused in another process takes effect within that time.
* **Explicit invalidation.** The owner of the data clears the cache in the process that changed
  it (``post_save``/``post_delete`` receivers in the owning app's ``signals``, through
  :meth:`ProcessCache.forget`: at once and again at the commit), so the process that made the
  change never sees the old value.
* **Only what a check reads again.** What is cached is what the request validates against;
  anything later that matters (the drain's claim re-reads the template's status and the
  tenant's state before a message leaves) reads the database itself.
* **Read-only values.** A cached model instance is shared by every thread of the process: the
  code that reads it never assigns to it.

A cache holds at most ``MAX_ENTRIES`` entries; beyond that the expired ones go, then all. An
expired entry is read again by one thread while the others that want it wait for that read; a
read that began before a ``clear`` is returned to its caller but not kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings
from django.db import transaction

T = TypeVar("T")
MAX_ENTRIES = 20_000
STRIPES = 16
_caches: list[ProcessCache] = []


class ProcessCache(Generic[T]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: dict[Hashable, tuple[float, T]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # +1 on every clear: a read begun before it is not kept
        # One reader per key at a time (striped): when an entry expires, the request threads
        # that want it wait for one read instead of each reading it (four reads per expiry per
        # gunicorn process, under load).
        self._stripes = [threading.Lock() for _ in range(STRIPES)]
        _caches.append(self)

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The value for ``key``: cached if read less than the configured seconds ago, else
        ``load()`` (its result cached, None included)."""
        ttl = settings.WAYPOST_LOOKUP_CACHE_SECONDS
        if ttl <= 0:
            return load()
        hit = self._fresh(key, ttl)
        if hit is not None:
            return hit[1]
        with self._stripes[hash(key) % STRIPES]:
            hit = self._fresh(key, ttl)  # another thread may have just read it
            if hit is not None:
                return hit[1]
            generation, read_at = self._generation, time.monotonic()
            value = load()
            with self._lock:
                if generation == self._generation:  # not cleared while it was read
                    if len(self._entries) >= MAX_ENTRIES:
                        self._entries = {
                            k: v for k, v in self._entries.items() if read_at - v[0] < ttl
                        }
                        if len(self._entries) >= MAX_ENTRIES:
                            self._entries = {}
                    self._entries[key] = (read_at, value)
        return value

    def _fresh(self, key: Hashable, ttl: float) -> tuple[float, T] | None:
        hit = self._entries.get(key)
        return hit if hit is not None and time.monotonic() - hit[0] < ttl else None

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
            self._generation += 1

    def forget(self) -> None:
        """For a ``post_save``/``post_delete`` receiver: clear now, and again once the change
        commits — another thread of this process may read the old row in between."""
        self.clear()
        transaction.on_commit(self.clear)


def clear_all() -> None:
    """Every cache of this process (tests; a receiver that cannot tell which entry changed
    clears its own cache instead)."""
    for cache in _caches:
        cache.clear()
