"""The reconciler's sweeps over messages: what did *not* happen on the way out.

These sit above both wings (they use the send wing's dispatch and re-send and the track
wing's ledger and stalls) and below the interface; ``operations.reconciler`` runs them on the
beat, each safe to run twice at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.db import bulk_update, retry_transient
from messaging.models import Message
from messaging.send import dispatch
from messaging.send.pipeline import submits_resolve_stuck
from messaging.send.requeue import message_requeue
from messaging.states import (
    NOT_SUBMITTED,
    ErrorClass,
    EventSource,
    EventType,
    MessageState,
    StallReason,
)
from messaging.track.ledger import NewEvent, lock_messages, record
from messaging.track.stalls import stalls_mark
from tenants.models import AmbiguousPolicy, Tenant

log = logging.getLogger(__name__)


def messages_expire(*, now=None, limit: int = 1000) -> int:
    """Waiting messages whose time to live passed without a drain claiming them (their sender
    blocked, their tenant paused): ``expired``, never sent. (A drain expires what it claims
    too late itself; this is the safety net.) Returns how many."""
    now = now or timezone.now()
    ids = list(
        Message.objects.filter(state__in=NOT_SUBMITTED, expires_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0

    def expire() -> int:
        with transaction.atomic():
            lock_messages(ids)
            waiting = list(
                Message.objects.filter(pk__in=ids, state__in=NOT_SUBMITTED, expires_at__lte=now)
            )
            for message in waiting:
                message.error_code, message.error_class = "expired", ErrorClass.INVALID
                message.error_title = "Not sent: its time to live passed first"
            bulk_update(waiting, ["error_code", "error_class", "error_title"])
            record(
                [
                    NewEvent(
                        m.pk,
                        EventType.EXPIRED,
                        EventSource.RECONCILER,
                        round=m.round,
                        detail={"expires_at": m.expires_at.isoformat()},
                    )
                    for m in waiting
                ],
                locked=True,
            )
        return len(waiting)

    return retry_transient(expire, what="expiring messages")


def messages_redrive(*, now=None, limit: int = 1000) -> dict[str, int]:
    """The sweep: the safety net under ``messaging.dispatch``, safe to run twice at once.

    * Nudges every tenant that has due messages. Normally each already has a drain pending or
      running and the nudge is a no-op; after a lost nudge (broker down at commit time, a
      process killed between commit and publish) this is what dispatches them. Each such
      tenant's queue is announced to the workers again first (a lost announcement leaves the
      queue unconsumed, whatever is published to it).
    * Records a ``redriven`` event (source ``reconciler``) on each message that has been due
      for longer than ``WAYPOST_REDRIVE_AFTER``: waiting that long means the normal path did
      not pick it up, and an operator should see it (zero when dispatch works).
    * Resolves submits whose worker died (``pipeline.submits_resolve_stuck``).
    """
    now = now or timezone.now()
    due = Message.objects.filter(dispatch.due_messages(now=now))
    tenants = list(
        Tenant.objects.filter(pk__in=due.values("tenant_id").distinct()).order_by("slug")
    )
    dispatch.broker_outage.reset()  # the sweep is how an outage ends: it tries the broker
    for tenant in tenants:
        dispatch.announce_queue(tenant.queue_name, again=True)
        dispatch.nudge(tenant_id=tenant.pk, queue=tenant.queue_name)
    stale_before = now - timedelta(seconds=settings.WAYPOST_REDRIVE_AFTER)
    stale = list(
        due.filter(
            Q(next_attempt_at__isnull=True, created_at__lte=stale_before)
            | Q(next_attempt_at__lte=stale_before)
        )
        .order_by("created_at")
        .values_list("pk", "round")[:limit]
    )
    if stale:
        log.warning(
            "re-drive: %d message(s) were due for over %ss",
            len(stale),
            settings.WAYPOST_REDRIVE_AFTER,
        )
        with transaction.atomic():
            record(
                [
                    NewEvent(
                        pk,
                        EventType.REDRIVEN,
                        EventSource.RECONCILER,
                        round=round_,
                        detail={"due_for_over_seconds": settings.WAYPOST_REDRIVE_AFTER},
                    )
                    for pk, round_ in stale
                ]
            )
    stuck = submits_resolve_stuck(now=now, limit=limit)
    return {"tenants_nudged": len(tenants), "redriven": len(stale), "stuck_resolved": stuck}


def unknown_resolve(*, now=None, limit: int = 1000) -> dict[str, int]:
    """Apply each tenant's policy to submits whose outcome stayed unknown past its grace
    period: ``hold`` flags them ``stalled`` for an operator; ``resend`` starts a new round.
    Bounded in SQL: at most ``limit`` messages per run, oldest first."""
    now = now or timezone.now()
    counts = {"held": 0, "resent": 0}
    graces = Tenant.objects.values_list("ambiguous_grace_seconds", flat=True).distinct()
    due = Q()
    for grace in graces:  # a handful of distinct values: one condition each, no Python filter
        due |= Q(
            tenant__ambiguous_grace_seconds=grace,
            state_changed_at__lte=now - timedelta(seconds=grace),
        )
    if not graces:
        return counts
    messages = list(
        Message.objects.filter(due, state=MessageState.UNKNOWN, stalled=False)
        .select_related("tenant")
        .order_by("state_changed_at")[:limit]
    )
    held = {}
    for message in messages:
        if message.tenant.ambiguous_policy == AmbiguousPolicy.RESEND:
            message_requeue(
                message=message,
                source=EventSource.RECONCILER,
                reason="unknown outcome past the grace period (policy: resend)",
            )
            counts["resent"] += 1
        else:
            held[message.pk] = StallReason.UNKNOWN_OUTCOME
    if held:  # policy hold: flagged stalled for an operator
        counts["held"] = sum(stalls_mark(reasons=held, now=now).values())
    return counts
