"""Sending again: a new round for a message whose first went nowhere certain (an operator's
re-send, the ``resend`` policy for an unknown outcome), and resuming a tenant's waiting messages
when its sender or the tenant is active again.

Both make messages due and nudge the tenant's dispatch (``messaging.send.dispatch``); neither
sends by itself: the drain does, under its own claim.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import Conflict
from messaging.models import Message
from messaging.send import dispatch
from messaging.send.pipeline import batches_recall
from messaging.states import NOT_SUBMITTED, EventType, MessageState
from messaging.track.ledger import NewEvent, record
from tenants.models import Tenant


def message_requeue(*, message: Message, source: str, reason: str) -> Message:
    """Start a new round for ``message`` and dispatch it at once (resend after an unknown
    outcome, an operator's retry). For ``unknown`` this may send twice: callers decide."""
    with transaction.atomic():
        message = Message.objects.select_for_update().select_related("tenant").get(pk=message.pk)
        if message.state not in (
            MessageState.UNKNOWN,
            MessageState.HELD,
            MessageState.QUEUED,
            MessageState.RETRY_SCHEDULED,
        ):
            raise Conflict(
                f"A {message.state} message cannot be re-queued.", code="not_requeueable"
            )
        message.round += 1
        message.stalled, message.stalled_reason, message.stalled_at = False, "", None
        message.next_attempt_at = timezone.now()  # due from now (the sweep measures from it)
        message.save(
            update_fields=[
                "round",
                "stalled",
                "stalled_reason",
                "stalled_at",
                "next_attempt_at",
                "updated_at",
            ]
        )
        record(
            [
                NewEvent(
                    message.pk,
                    EventType.REQUEUED,
                    source,
                    round=message.round,
                    detail={"reason": reason},
                )
            ],
            locked=True,
        )
        transaction.on_commit(
            lambda: dispatch.nudge(tenant_id=message.tenant_id, queue=message.tenant.queue_name)
        )
    return message


def messages_resume(*, tenant: Tenant) -> int:
    """A sender or the tenant became active again: its waiting messages are due from now, and
    the tenant's dispatch is nudged at once. Returns how many messages were waiting."""
    now = timezone.now()
    waiting = Message.objects.filter(tenant=tenant, state__in=NOT_SUBMITTED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=now)
    )
    count = waiting.update(next_attempt_at=now)
    dispatch.nudge(tenant_id=tenant.pk, queue=tenant.queue_name)
    return count


# A campaign's paused messages wait "until further notice": a ``next_attempt_at`` no drain
# reaches (``dispatch.PARKED``), set and cleared only here.


def campaign_messages_park(*, campaign_id) -> int:
    """Its messages not yet claimed for submission stop being due (a paused or cancelled
    campaign) — every one, whatever its time: due now, waiting for its send window or the
    pair limit, or a retry (after Meta's spam rate limit, sending again makes it worse).
    Messages a drain holds are being submitted: the update waits for that commit and then no
    longer matches them. Returns how many were parked."""
    return Message.objects.filter(campaign_id=campaign_id, state__in=NOT_SUBMITTED).update(
        next_attempt_at=dispatch.PARKED
    )


def campaign_batches_recall(*, campaign_id, reason: str) -> int:
    """After :func:`campaign_messages_park`: its messages already claimed for submission whose
    batch's requests have not begun go back to waiting, parked, too
    (``pipeline.batches_recall``) — what is already on its way to the provider goes. Returns
    how many went back."""
    ids = list(
        Message.objects.filter(campaign_id=campaign_id, state=MessageState.SUBMITTING).values_list(
            "pk", flat=True
        )
    )
    return batches_recall(message_ids=ids, reason=reason) if ids else 0


def campaign_messages_unpark(*, campaign_id, tenant: Tenant) -> int:
    """A resumed campaign: its parked messages are due again (the claim works out a send
    window or a pair limit anew), and the tenant's drain rings."""
    count = Message.objects.filter(
        campaign_id=campaign_id, state__in=NOT_SUBMITTED, next_attempt_at=dispatch.PARKED
    ).update(next_attempt_at=None)
    transaction.on_commit(lambda: dispatch.nudge(tenant_id=tenant.pk, queue=tenant.queue_name))
    return count
