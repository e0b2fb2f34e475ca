"""A campaign's counts, as its rows and its messages' states say (the ledger's projection):
what the API, the admin, the callbacks and the final report all show."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, CampaignRow, HeldReason, RowOutcome
from messaging.models import Message
from messaging.states import MessageState

# Message states, as a campaign's progress groups them.
_WAITING = {MessageState.QUEUED, MessageState.RETRY_SCHEDULED, MessageState.SUBMITTING}
_FAILED = {MessageState.FAILED, MessageState.REJECTED}
RATE_WINDOW = timedelta(seconds=60)


def campaign_counts(campaign: Campaign) -> dict:
    """Rows by outcome and messages by state, in one shape:

    ``rows`` (the audience), ``invalid`` and ``skipped`` (never sent), ``pending`` (not yet
    released; ``held_at_limit`` of them while the campaign is held at the messaging limit),
    ``queued`` (released, not yet answered by the provider), ``accepted``, ``sent``,
    ``delivered``, ``read`` (each message counted once, in its current state), ``failed``
    (``failed_by_code``), ``expired``, ``cancelled``, ``unknown``, ``held``."""
    rows = dict(
        CampaignRow.objects.filter(campaign=campaign)
        .values_list("outcome")
        .annotate(n=Count("id"))
        .order_by()
    )
    states = dict(
        Message.objects.filter(campaign=campaign)
        .values_list("state")
        .annotate(n=Count("id"))
        .order_by()
    )
    failed_by_code = dict(
        Message.objects.filter(campaign=campaign, state__in=_FAILED)
        .values_list("error_code")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    for code, n in (
        CampaignRow.objects.filter(campaign=campaign, outcome=RowOutcome.FAILED)
        .values_list("error_code")
        .annotate(n=Count("id"))
        .order_by()
    ):
        failed_by_code[code] = failed_by_code.get(code, 0) + n
    pending = rows.get(RowOutcome.PENDING, 0)
    held = campaign.held_reason == HeldReason.MESSAGING_LIMIT
    return {
        "rows": sum(rows.values()),
        "invalid": rows.get(RowOutcome.INVALID, 0),
        "skipped": rows.get(RowOutcome.SKIPPED, 0),
        "pending": pending,
        "held_at_limit": pending if held else 0,
        "queued": sum(states.get(s, 0) for s in _WAITING),
        "accepted": states.get(MessageState.ACCEPTED, 0),
        "sent": states.get(MessageState.SENT, 0),
        "delivered": states.get(MessageState.DELIVERED, 0),
        "read": states.get(MessageState.READ, 0),
        "failed": sum(states.get(s, 0) for s in _FAILED) + rows.get(RowOutcome.FAILED, 0),
        "failed_by_code": failed_by_code,
        "expired": states.get(MessageState.EXPIRED, 0) + rows.get(RowOutcome.EXPIRED, 0),
        "cancelled": states.get(MessageState.CANCELLED, 0),
        "unknown": states.get(MessageState.UNKNOWN, 0),
        "held": states.get(MessageState.HELD, 0),
    }


def campaign_rate(campaign: Campaign, now=None) -> float:
    """Messages released per second over the last minute."""
    now = now or timezone.now()
    recent = Message.objects.filter(campaign=campaign, created_at__gte=now - RATE_WINDOW).count()
    return round(recent / RATE_WINDOW.total_seconds(), 2)
