"""Webhook dispatcher: schedules, batches, signs and delivers webhooks like Meta does.

* Every event has a due time. One loop pops what is due, groups status events of the same
  phone number into one POST (up to ``webhook_batch_max``, §4.2 "batching"), and posts with a
  bounded number of requests in flight.
* Each POST is signed: ``X-Hub-Signature-256: sha256=<HMAC-SHA256(body, app secret)>`` (§4.2).
* A POST answered with anything but 200, or not answered, is retried: at once, then with
  exponential backoff (§4.3), up to ``webhook_retry_max`` attempts.
* Faults are decided when an event is scheduled (duplicate, drop) or planned (reorder), with
  the sandbox's seeded random generator.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from sandbox import wire

if TYPE_CHECKING:
    import random

    from sandbox.config import SandboxConfig
    from sandbox.state import Stats

log = logging.getLogger("sandbox.webhooks")


@dataclass(order=True)
class _Item:
    due: float
    seq: int
    # Either one status for a phone number (batched with others) or a ready payload.
    phone_number_id: str = field(compare=False, default="")
    waba_id: str = field(compare=False, default="")
    display: str = field(compare=False, default="")
    status: dict | None = field(compare=False, default=None)
    contact: dict | None = field(compare=False, default=None)  # its `contacts[]` entry, if any
    payload: bytes | None = field(compare=False, default=None)
    events: int = field(compare=False, default=1)
    attempt: int = field(compare=False, default=0)


class Dispatcher:
    def __init__(self, config: SandboxConfig, stats_ref, rng: random.Random) -> None:
        self.config = config
        self._stats_ref = stats_ref  # callable: the current Stats (reset swaps it)
        self.rng = rng
        self.heap: list[_Item] = []
        self.seq = itertools.count()
        self.session: aiohttp.ClientSession | None = None
        self.task: asyncio.Task | None = None
        self.in_flight: set[asyncio.Task] = set()
        self.slots: asyncio.Semaphore | None = None

    @property
    def stats(self) -> Stats:
        return self._stats_ref()

    @property
    def pending(self) -> int:
        return len(self.heap) + len(self.in_flight)

    # --- scheduling ----------------------------------------------------------------------------

    def schedule_status(
        self,
        delay_s: float,
        *,
        phone_number_id: str,
        waba_id: str,
        display: str,
        status: dict,
        contact: dict | None = None,
    ) -> bool:
        """Schedule one status event; returns False when the drop knob swallowed it."""
        if self.rng.random() < self.config.webhook_drop_rate:
            self.stats.webhook_events_dropped += 1
            return False
        due = time.monotonic() + delay_s + self.config.webhook_delay_ms / 1000
        copies = 1
        if self.rng.random() < self.config.webhook_duplicate_rate:
            copies = 2
            self.stats.webhook_events_duplicated += 1
        for copy_index in range(copies):
            jitter = self.rng.uniform(0.01, 0.2) if copy_index else 0.0
            heapq.heappush(
                self.heap,
                _Item(
                    due + jitter,
                    next(self.seq),
                    phone_number_id=phone_number_id,
                    waba_id=waba_id,
                    display=display,
                    status=status,
                    contact=contact,
                ),
            )
        return True

    def schedule_payload(self, delay_s: float, payload: dict[str, Any]) -> None:
        due = time.monotonic() + delay_s + self.config.webhook_delay_ms / 1000
        heapq.heappush(self.heap, _Item(due, next(self.seq), payload=wire.dumps(payload)))

    def clear(self) -> None:
        self.heap.clear()

    # --- delivery ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout_s),
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
        )
        self.slots = asyncio.Semaphore(max(1, self.config.webhook_concurrency))
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        for task in list(self.in_flight):
            task.cancel()
        await asyncio.gather(*self.in_flight, return_exceptions=True)
        if self.session:
            await self.session.close()

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            if not self.heap or self.heap[0].due > now or not self.config.webhook_url:
                await asyncio.sleep(0.005)
                continue
            due: list[_Item] = []
            while self.heap and self.heap[0].due <= now and len(due) < 10_000:
                due.append(heapq.heappop(self.heap))
            for body, events, attempt in self._batches(due):
                await self.slots.acquire()
                task = asyncio.create_task(self._post(body, events, attempt))
                self.in_flight.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.in_flight.discard(task)
        self.slots.release()

    def _batches(self, items: list[_Item]):
        by_number: dict[str, list[_Item]] = {}
        for item in items:
            if item.payload is not None:
                yield item.payload, item.events, item.attempt
            else:
                by_number.setdefault(item.phone_number_id, []).append(item)
        size = max(1, self.config.webhook_batch_max)
        for group in by_number.values():
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                first = chunk[0]
                contacts = {}  # one entry per user, in order (2026: statuses carry contacts)
                for item in chunk:
                    if item.contact is not None:
                        contacts.setdefault(item.contact.get("user_id"), item.contact)
                value = wire.messages_value(
                    first.phone_number_id,
                    first.display,
                    contacts=list(contacts.values()),
                    statuses=[i.status for i in chunk],
                )
                yield wire.dumps(wire.envelope(first.waba_id, "messages", value)), len(chunk), 0

    async def _post(self, body: bytes, events: int, attempt: int) -> None:
        headers = {"Content-Type": "application/json"}
        if self.config.app_secret:
            headers["X-Hub-Signature-256"] = wire.sign(body, self.config.app_secret)
        self.stats.webhook_posts += 1
        try:
            async with self.session.post(
                self.config.webhook_url, data=body, headers=headers
            ) as response:
                await response.read()
                ok = response.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.debug("webhook POST failed: %s", exc)
            ok = False
        if ok:
            self.stats.webhook_posts_ok += 1
            self.stats.webhook_events_sent += events
            return
        self.stats.webhook_posts_failed += 1
        if attempt + 1 >= self.config.webhook_retry_max:
            self.stats.webhook_gave_up += 1
            return
        self.stats.webhook_retries += 1
        # Meta retries at once, then with decreasing frequency (§4.3).
        delay = (
            0.0 if attempt == 0 else self.config.webhook_retry_base_ms / 1000 * 2 ** (attempt - 1)
        )
        heapq.heappush(
            self.heap,
            _Item(
                time.monotonic() + delay,
                next(self.seq),
                payload=body,
                events=events,
                attempt=attempt + 1,
            ),
        )
