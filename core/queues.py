"""Which broker queue a tenant's work travels on: a few shared queues, not one per tenant.

Why
---
Every queue a worker consumes is a key in each of its broker polls (Redis ``BRPOP`` lists every
queue, four keys each for Celery's priority steps), a subscription at its start and a ``LLEN``
for the metrics. One queue per tenant made all three grow with the tenant count: with thousands
of tenants a worker took minutes to start and every idle poll cost Redis thousands of keys
(``bench/tenants.py``). What a queue per tenant bought — one tenant's backlog never in front of
another's message — comes from the lanes below and from the doorbell's one pending drain per
tenant (``core.coordination``), not from the queue count.

The lanes
---------
* **Express** — ``send.0`` … ``send.<n-1>`` (``WAYPOST_SEND_QUEUES``): a tenant's drains, its
  wake-ups, and the chained steps of a batch that emptied its due messages — the work of a
  tenant without a backlog: an OTP, an order update, a campaign's last partial batch. A tenant
  is assigned one by a stable hash of its id (every process computes the same).
* **Bulk** — ``bulk.0`` … ``bulk.<m-1>`` (``WAYPOST_BULK_QUEUES``), assigned by the same hash:
  a backlog's work — the drain rung by a batch request that brought a full batch or more, the
  chained steps of a *full* batch and the drain that claims the next one, a campaign's feed
  passes. Submitting a hundred requests waits here, never in front of a quiet tenant's drain.
* **Dedicated** — ``tenant.<slug>``: both lanes of a tenant an operator gave a queue of its
  own (``Tenant.dedicated_queue``: a platform's largest customer, a tenant to watch on its
  own in the broker). Workers subscribe to these at start and when one is first used
  (``messaging.send.dispatch.announce_queue``).

Fairness: the Procfile's ``express`` worker consumes the express lanes only
(``WORKER_LANES=express``: ``messaging.signals``), so a quiet tenant's drain waits behind other
drains and small batches at most, never behind a backlog's batch — whose submit holds a process
for hundreds of milliseconds — however many tenants flood. It is a pool of threads (Celery's
``--pool threads``, ``EXPRESS_CONCURRENCY``): a drain mostly waits on PostgreSQL and the
provider, and under a flood quiet tenants' messages come in bursts (the web answers the requests
it had queued at once), which one process would claim one after another. A held drain's wake-up
and a rate-limited tenant's are a backlog's work: they take the bulk lane (``messaging.send.
pipeline``). The other workers consume every lane,
taking the next task from the non-empty queue they read least recently (kombu rotates the queue
just read to the end of its list). Within a queue tasks are in order, and a tenant has at most
one pending drain plus the steps of at most two batches in flight (``messaging.send.
pipeline``), so tenants sharing a bulk queue take turns batch by batch. Measured with 10,000
tenants while ten flood: ``bench/results/tenants-after-threads.md``.

Changing ``WAYPOST_SEND_QUEUES`` or ``WAYPOST_BULK_QUEUES`` moves tenants between queues: deploy
it to every process at once (each process's start line names both: ``core.startup``). Nothing
is stranded on a lane no longer named, nor on a tenant's own queue taken away: a worker reads
such a queue at its start while it still holds tasks (``messaging.signals``).

No Django access here: the settings build ``CELERY_TASK_QUEUES`` with :func:`shared_queues`.
"""

from __future__ import annotations

import zlib

EXPRESS, BULK, DEDICATED = "send.", "bulk.", "tenant."


def shared_queues(express: int, bulk: int) -> list[str]:
    """Every shared queue's name: the express lanes, then the bulk lanes."""
    return [f"{EXPRESS}{i}" for i in range(express)] + [f"{BULK}{i}" for i in range(bulk)]


def slot(tenant_id, count: int) -> int:
    """The tenant's lane number among ``count``: a stable hash of its id (CRC-32, the same in
    every process and release — Python's ``hash`` of a string is salted per process)."""
    return zlib.crc32(str(tenant_id).encode()) % count


def queue_for(*, tenant_id, slug: str, dedicated: bool, bulk: bool, counts: tuple[int, int]):
    """The queue of one tenant's work: its own when ``dedicated``, else its bulk lane for a
    backlog's work (``bulk``) or its express lane."""
    if dedicated:
        return f"{DEDICATED}{slug}"
    express, bulk_count = counts
    if bulk:
        return f"{BULK}{slot(tenant_id, bulk_count)}"
    return f"{EXPRESS}{slot(tenant_id, express)}"


def is_dedicated(queue: str) -> bool:
    """Whether ``queue`` is one tenant's own (workers must be told to consume it)."""
    return queue.startswith(DEDICATED)
