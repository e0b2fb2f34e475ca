"""How work reaches a worker: the database says what must be sent; the broker only nudges.

The design
----------
A message is *due* when it is ``queued`` or ``retry_scheduled``, its ``next_attempt_at`` is
empty or past, its sender is active and its tenant is active. The set of due messages — rows in
PostgreSQL, committed by the API before it answers — is the only record of what must be sent.
Nothing is published per message.

* **Nudge.** Whoever makes a message due (the API after its commit, a resend, a sender
  unblocked) calls :func:`nudge` for the tenant: it rings the tenant's doorbell
  (``core.coordination.Doorbell``, whose docstring is the mechanism's one description), which
  publishes one ``messaging.drain`` task on the tenant's express queue (``core.queues``: a
  shared lane chosen by a hash of the tenant, or a queue of its own) unless one is already
  pending; the drain answers the ring when it *starts* (:func:`drain_started`).
  A message committed while a drain is pending is seen by that drain, because the drain reads
  after it answered; one committed after that rings again and publishes the next drain. Bursts
  of API calls therefore cost one task, not one per call.
* **Drain** (``messaging.send.pipeline.drain``). Claims up to ``WAYPOST_BATCH_SIZE`` of the tenant's
  due messages, oldest first, with ``SELECT … FOR UPDATE SKIP LOCKED``, and runs the four steps
  — validate, transform, submit, check acceptance — over that batch, the last three as chained
  tasks: a lone OTP is a batch of one and goes at once; a burst of singles becomes batches.
  A drain that claimed a full batch nudges again before its chain runs, so a second worker
  process claims the next batch while the first one's is submitted; that batch's steps and
  that next drain go on the tenant's *bulk* lane, out of the express lanes' way.
* **Fairness** is per batch: each drain handles at most one batch; a tenant with a backlog has
  at most one pending drain (plus one wake-up) and the steps of at most two batches on its
  bulk lane; workers take the next task from the non-empty queue they read least recently;
  so another tenant's message waits for the task a worker process is busy with, however
  large the backlog (``core.queues``).
* **Held.** A drain that finds two full batches of its tenant's own in flight (the
  pipeline's back-pressure) claims nothing and holds the doorbell instead of answering it
  (:func:`hold`): nudges publish no drain until a batch's check step ends the hold
  (:func:`batch_done`) and looks for due messages itself; a drain ``HOLD_SECONDS`` later looks
  again in any case. It answers only once it knows it will claim — after the hold is set it
  looks at the batches in flight once more — and before it reads what is due.
* **Wake-ups.** A message that must wait (backoff, cool-down, pair limit, a paused template)
  gets a future ``next_attempt_at``. At the end of every pass the drain schedules a delayed
  ring (:func:`wake`) for the tenant's earliest future due time, capped at
  ``WAYPOST_COUNTDOWN_MAX`` (a longer wait is a chain of wake-ups, never a multi-hour broker
  countdown). Only the earliest pending wake-up per tenant is published.
* **The sweep** (``messages_redrive`` on the beat) is the safety net for a nudge that was lost —
  broker down at commit time, a process killed between commit and publish. It nudges every
  tenant with due messages and records a ``redriven`` event on each message it finds due for
  longer than ``WAYPOST_REDRIVE_AFTER``: that count is zero when the normal path works.

Locks — who holds what, and who picks up what a ``SKIP LOCKED`` query skipped
-------------------------------------------------------------------------------------------
=============================  ==========================  ====================================
Lock                           Taken by                    Protects
=============================  ==========================  ====================================
message rows, ``SKIP LOCKED``  drain: the claim            a due message is claimed by one
                                                           drain; committed ``submitting``
                                                           before its request leaves
message rows, in id order      ledger writers: recording   the state projection and the event
(``ledger.lock_messages``)     answers, webhook statuses,  dedupe; one order for everyone, so
                               cancel, resend, operator    two writers cannot deadlock
webhook delivery rows,         webhook processor           a stored delivery is processed by
``SKIP LOCKED``                                            one processor at a time
=============================  ==========================  ====================================

Nothing writes to a due message outside a short transaction that also makes it not due or
leaves it due (cancel, resend, an operator action) — there is no bookkeeping write after a
publish. A row a drain skips because someone else holds it is picked up promptly: after its
claim the drain checks, without locking, whether due messages remain beyond what it claimed;
if so it nudges again (at once after a full batch, after ``RECHECK_DELAY`` when rows were
locked by others), so a skipped row waits for the lock holder's commit plus a fraction of a
second, never for the sweep. The webhook processor's skipped deliveries are pending and
re-claimed by its next run, which the endpoint rings for on every delivery.

Publishing never raises: with the broker down the messages stay due (and visible as ``queued``)
and the sweep nudges their tenants once it is back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from celery import current_app as app
from django.conf import settings
from django.db.models import Q

from core.coordination import REDIS_SCHEMES, Doorbell, broker_outage, redis_client
from core.queues import BULK, DEDICATED, EXPRESS, is_dedicated
from messaging.states import NOT_SUBMITTED
from tenants.models import SenderStatus

log = logging.getLogger(__name__)

DRAIN_TASK = "messaging.drain"
# "Until further notice": a paused campaign's messages (``messaging.send.requeue``).
PARKED = datetime(2999, 1, 1, tzinfo=UTC)
# After a claim skipped rows held by another transaction, look again this soon.
RECHECK_DELAY = 0.2
# How long a drain held back by its tenant's batches in flight keeps nudges from publishing
# (``hold``), and when a drain looks again: a check step normally ends the hold sooner.
HOLD_SECONDS = 2
_announced: set[str] = set()


def due_messages(*, now) -> Q:
    """The one definition of *due* (a filter on ``Message``): what a drain may claim."""
    return (
        Q(state__in=NOT_SUBMITTED)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        & Q(sender__status=SenderStatus.ACTIVE, tenant__active=True)
    )


def announce_queue(queue: str, *, again: bool = False) -> bool:
    """Tell every running worker to consume ``queue`` when it is a tenant's own
    (``core.queues``; idempotent on the worker side); a shared queue needs no telling.
    False when the broker could not be reached. Once per process, unless ``again``: the
    sweep repeats it for every such tenant with due messages, because the broadcast itself can be
    lost (Redis restarted between the publish and the workers' read: ``make chaos`` saw a
    tenant's queue unconsumed for four minutes). On the in-process ``memory://`` broker (the
    demo) the broadcast reaches the worker thread of this same process, as it would a worker
    process: a tenant added while the demo runs gets its queue consumed too."""
    if not is_dedicated(queue) or (queue in _announced and not again):
        return True  # a shared queue is every worker's from its start (CELERY_TASK_QUEUES)
    try:
        app.control.add_consumer(queue, reply=False)
    except Exception as exc:  # broker down: workers subscribe to these tenants at start too
        log.warning("could not announce queue %s: %s", queue, type(exc).__name__)
        broker_outage.failed()
        return False
    _announced.add(queue)
    return True


_drains = Doorbell("drain", task=DRAIN_TASK, before_publish=announce_queue)


def nudge(*, tenant_id, queue: str, delay: float = 0.0) -> bool:
    """Make sure a drain for the tenant runs now (or in ``delay`` seconds). Debounced: returns
    False when an equivalent drain is already pending, or when the broker is unreachable (the
    messages stay due; the sweep nudges again)."""
    return _drains.ring(str(tenant_id), queue=queue, args=(str(tenant_id),), delay=delay)


def wake(*, tenant_id, queue: str, delay: float) -> bool:
    """A delayed nudge: a drain in ``delay`` seconds (capped at ``WAYPOST_COUNTDOWN_MAX``),
    unless one is already scheduled no later than that (``delay`` 0 or less: a nudge now)."""
    return _drains.ring(str(tenant_id), queue=queue, args=(str(tenant_id),), delay=delay)


def drain_started(tenant_id) -> None:
    """Called by a drain before it reads: nudges from now on publish a new drain."""
    _drains.answered(str(tenant_id))


def hold(*, tenant_id, queue: str) -> None:
    """Called, instead of :func:`drain_started`, by a drain that claims nothing because the
    tenant's batches in flight are at their limit (the pipeline's back-pressure): nudges
    publish no drain — under a stream of single sends each would start one that claims
    nothing — until a batch's check step ends the hold (:func:`batch_done`) and looks for due
    messages itself. A drain in ``HOLD_SECONDS`` looks again whatever happens (a check step
    lost with its worker, a batch retired)."""
    _drains.hold(str(tenant_id), seconds=HOLD_SECONDS)
    wake(tenant_id=tenant_id, queue=queue, delay=HOLD_SECONDS)


def batch_done(tenant_id) -> None:
    """Called by a batch's check step once its answers are recorded, before it looks for due
    messages: ends a hold, so a message committed from now on rings a drain of its own and
    one committed before is seen by that look. A pending ring that is not a hold stays (its
    drain is coming)."""
    _drains.release(str(tenant_id))


def leftover_queues() -> set[str]:
    """Queues of ours that still hold tasks in a Redis broker though this deployment no longer
    names them — a tenant's own queue taken away or renamed, a lane dropped when
    ``WAYPOST_SEND_QUEUES`` or ``WAYPOST_BULK_QUEUES`` shrank: their tasks are read, not
    stranded. Empty for other brokers."""
    if not settings.CELERY_BROKER_URL.startswith(REDIS_SCHEMES):
        return set()
    client = redis_client(settings.CELERY_BROKER_URL)
    found = set()
    try:
        for prefix in (EXPRESS, BULK, DEDICATED):
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                # kombu's priority steps add "\x06\x16" and a digit to a queue's name.
                found.add(key.decode().split("\x06")[0])
    except Exception as exc:  # the worker retries the broker itself; this is a safety net
        log.warning("could not list leftover queues: %s", type(exc).__name__)
    return found
