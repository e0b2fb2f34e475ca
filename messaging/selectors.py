"""Reads of messages; every read is scoped by ``tenant``."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet

from core.errors import NotFound
from messaging.models import InboundMessage, Message, MessageEvent
from messaging.states import Fact, precedence
from tenants.models import Tenant


def message_list(
    *,
    tenant: Tenant,
    state: str | None = None,
    recipient: str | None = None,
    template: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    stalled: bool | None = None,
) -> QuerySet[Message]:
    qs = Message.objects.filter(tenant=tenant)
    if state:
        qs = qs.filter(state__in=state.split(","))
    if recipient:
        qs = qs.filter(recipient=recipient)
    if template:
        qs = qs.filter(template_name=template)
    if created_after:
        qs = qs.filter(created_at__gte=created_after)
    if created_before:
        qs = qs.filter(created_at__lt=created_before)
    if stalled is not None:
        qs = qs.filter(stalled=stalled)
    return qs


def message_get(*, tenant: Tenant, message_id) -> Message:
    message = Message.objects.filter(tenant=tenant, pk=message_id).first()
    if message is None:
        raise NotFound("No such message.", code="message_not_found")
    return message


def _sort_key(event: MessageEvent):
    """Meta's timestamps are whole seconds: an event stamped T happened during second T, so it
    sorts at the end of that second, after our own sub-second events of the same second."""
    at = event.occurred_at
    if event.source == "webhook" and at.microsecond == 0:
        at = at + timedelta(microseconds=999_999)
    return at, event.recorded_at, event.pk


def message_timeline(*, message: Message) -> list[dict]:
    """The ledger in order, each event with the state it moved the message to (or None)."""
    best = -1
    timeline = []
    for event in sorted(MessageEvent.objects.filter(message=message), key=_sort_key):
        ranked = precedence(Fact(event.type, event.round))
        moved = None
        if ranked and ranked[0] > best:
            best, moved = ranked[0], str(ranked[1])
        timeline.append(
            {
                "type": event.type,
                "source": event.source,
                "state": moved,
                "round": event.round,
                "occurred_at": event.occurred_at,
                "recorded_at": event.recorded_at,
                "detail": event.detail,
            }
        )
    return timeline


def inbound_list(*, tenant: Tenant, wa_id: str | None = None) -> QuerySet[InboundMessage]:
    qs = InboundMessage.objects.filter(tenant=tenant).select_related("contact")
    if wa_id:
        qs = qs.filter(contact__wa_id=wa_id.lstrip("+"))
    return qs
