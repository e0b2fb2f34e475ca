"""Stalls: messages whose next status did not come. Flagged by the reconciler's rules (which
wait how long, for what: ``messaging.sweeps.RULES``), cleared by the status that was missing or
by an operator (:func:`message_resolve`, :func:`message_mark_failed`).

A stall is a flag (``stalled``, ``stalled_reason``, ``stalled_at``) and a ledger event, never a
state change: Meta may still deliver the message, and its state must stay what the provider
said. Flagging and clearing lock the messages in the ledger's order (``ledger.lock_messages``)
and re-check under the lock, so two reconciler passes at once flag each message once.
"""

from __future__ import annotations

import logging
from collections import Counter

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import metrics
from core.alerts import alert
from core.errors import Conflict
from messaging.models import Message
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, lock_messages, record
from messaging.track.notify import notify

log = logging.getLogger(__name__)


def stalls_mark(*, reasons: dict, still: Q | None = None, now=None) -> Counter:
    """Flag ``{message id: reason}`` stalled, each once, with its event; in one transaction.

    ``still``: what made them candidates, checked again once they are locked — a status
    applied between a rule's choice and the lock (a ``delivered`` that just came) leaves the
    message alone."""
    now = now or timezone.now()
    counts: Counter = Counter()
    with transaction.atomic():
        lock_messages(reasons)
        messages = Message.objects.filter(
            still or Q(), pk__in=list(reasons), stalled=False
        ).select_related("tenant")
        events, flagged = [], []
        for message in messages:
            reason = reasons[message.pk]
            since = (now - message.state_changed_at).total_seconds()
            events.append(
                NewEvent(
                    message.pk,
                    EventType.FLAGGED_STALLED,
                    EventSource.RECONCILER,
                    round=message.round,
                    detail={
                        "reason": str(reason),
                        "state": message.state,
                        "in_state_for_seconds": int(since),
                    },
                    dedupe_key=f"flagged_stalled:{reason}:{message.round}",
                )
            )
            flagged.append(message.pk)
            counts[str(reason)] += 1
            metrics.stalls.labels(reason=str(reason)).inc()
            log.info(
                "message stalled",
                extra={
                    "message_id": str(message.pk),
                    "tenant": message.tenant.slug,
                    "wamid": message.provider_message_id or "",
                    "state": message.state,
                    "reason": str(reason),
                },
            )
        for reason in set(reasons.values()):
            Message.objects.filter(pk__in=[pk for pk in flagged if reasons[pk] == reason]).update(
                stalled=True, stalled_reason=reason, stalled_at=now
            )
        record(events, locked=True)
        by_tenant: Counter = Counter(
            (m.tenant.slug, str(reasons[m.pk])) for m in messages if m.pk in set(flagged)
        )
        for (slug, reason), n in by_tenant.items():
            transaction.on_commit(
                lambda s=slug, r=reason, n=n: alert(
                    f"{n} message(s) stalled: {r}", tenant=s, reason=r, count=n
                )
            )
        notify(
            {
                pk: (
                    "message.stalled",
                    {"stalled_reason": str(reasons[pk]), "stalled_at": now.isoformat()},
                )
                for pk in flagged
            }
        )
    return counts


def stalls_clear(*, ranks_before: dict, source: str = EventSource.WEBHOOK) -> int:
    """Clear the stall of messages whose state a provider status just moved (call inside the
    transaction that recorded it, holding their locks): the missing status arrived. Returns
    how many were cleared; each gets a ``stall_cleared`` event saying which state ended it."""
    stalled = {
        pk: (state, rank, reason, at)
        for pk, state, rank, reason, at in Message.objects.filter(
            pk__in=list(ranks_before), stalled=True
        ).values_list("pk", "state", "state_rank", "stalled_reason", "stalled_at")
    }
    moved = {pk: row for pk, row in stalled.items() if row[1] > ranks_before[pk]}
    if not moved:
        return 0
    now = timezone.now()
    record(
        [
            NewEvent(
                pk,
                EventType.STALL_CLEARED,
                source,
                detail={
                    "reason": reason,
                    "cleared_by_state": state,
                    "stalled_for_seconds": int((now - at).total_seconds()) if at else None,
                },
                dedupe_key=f"stall_cleared:{reason}:{at.isoformat() if at else ''}",
            )
            for pk, (state, _rank, reason, at) in moved.items()
        ],
        locked=True,
    )
    Message.objects.filter(pk__in=list(moved)).update(
        stalled=False, stalled_reason="", stalled_at=None
    )
    return len(moved)


def message_resolve(*, message: Message, source: str, reason: str) -> Message:
    """An operator dealt with a stalled message (told the customer, checked with Meta): the
    stall flag is cleared with the reason; the state stays what the provider said."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message.pk)
        if not message.stalled:
            raise Conflict("The message is not stalled.", code="not_stalled")
        record(
            [
                NewEvent(
                    message.pk,
                    EventType.STALL_CLEARED,
                    source,
                    round=message.round,
                    detail={"reason": message.stalled_reason, "resolved": reason},
                    dedupe_key=f"stall_resolved:{message.stalled_reason}:{message.stalled_at}",
                )
            ],
            locked=True,
        )
        Message.objects.filter(pk=message.pk).update(
            stalled=False, stalled_reason="", stalled_at=None
        )
    message.refresh_from_db()
    return message


def message_mark_failed(*, message: Message, source: str, reason: str) -> Message:
    with transaction.atomic():
        record(
            [
                NewEvent(
                    message.pk,
                    EventType.MARKED_FAILED,
                    source,
                    round=message.round,
                    detail={"reason": reason},
                )
            ]
        )
        Message.objects.filter(pk=message.pk).update(
            stalled=False, stalled_reason="", stalled_at=None
        )
    message.refresh_from_db()
    return message
