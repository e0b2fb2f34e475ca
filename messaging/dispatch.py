"""Putting message batches on the broker: a chain of the four pipeline tasks on the tenant's
own queue, ``batch_size`` messages per chain.

Publishing never raises: if the broker is down the messages stay ``queued`` (their
``enqueued_at`` stays empty) and the periodic re-drive publishes them later. New tenant queues
are announced to running workers with Celery's ``add_consumer`` broadcast, once per queue per
process, so a worker starts consuming a new tenant's queue without a restart.
"""

from __future__ import annotations

import logging

from celery import chain
from django.conf import settings
from django.utils import timezone

from config.celery_app import app

log = logging.getLogger(__name__)
STEPS = (
    "messaging.validate",
    "messaging.transform",
    "messaging.submit",
    "messaging.check_acceptance",
)
_announced: set[str] = set()


def announce_queue(queue: str) -> bool:
    """Tell every running worker to consume ``queue`` (idempotent on the worker side).
    False when the broker could not be reached."""
    if queue in _announced or settings.CELERY_BROKER_URL.startswith("memory://"):
        return True
    try:
        app.control.add_consumer(queue, reply=False)
    except Exception as exc:  # broker down: workers also subscribe to every tenant at start
        log.warning("could not announce queue %s: %s", queue, type(exc).__name__)
        return False
    _announced.add(queue)
    return True


def enqueue_messages(
    ids: list, *, queue: str, countdown: float = 0, start: str = "validate"
) -> bool:
    """Publish ``ids`` in chains of ``WAYPOST_BATCH_SIZE``; True if every chain was published."""
    from messaging.models import Message

    if not ids:
        return True
    if not announce_queue(queue):
        log.warning("broker unreachable: %d message(s) stay queued for the re-drive", len(ids))
        return False
    steps = STEPS[[s.split(".")[1] for s in STEPS].index(start) :]
    size = settings.WAYPOST_BATCH_SIZE
    ok = True
    for offset in range(0, len(ids), size):
        chunk = [str(pk) for pk in ids[offset : offset + size]]
        signatures = [app.signature(steps[0], args=(chunk,), queue=queue)]
        signatures += [app.signature(name, queue=queue) for name in steps[1:]]
        try:
            chain(*signatures).apply_async(countdown=countdown or None, retry=False)
        except Exception as exc:  # the broker is down: leave them queued for the re-drive
            log.warning(
                "enqueue of %d message(s) on %s failed (%s); they stay queued",
                len(chunk),
                queue,
                type(exc).__name__,
            )
            ok = False
            continue
        if not countdown:
            Message.objects.filter(pk__in=chunk).update(enqueued_at=timezone.now())
    return ok
