"""What a client app is told about its messages (``callbacks``): the states that matter —
delivered, read, failed, rejected — and stalls, never "accepted". Called by the ledger and the
stall rules inside their transactions, holding the messages' locks, so each callback is written
with the change that causes it and numbered in the order of the changes (``sequence``)."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import F

from callbacks.services import Item, callbacks_enqueue
from messaging.models import Message
from messaging.states import MessageState

STATE_EVENTS = {
    MessageState.DELIVERED: "message.delivered",
    MessageState.READ: "message.read",
    MessageState.FAILED: "message.failed",
    MessageState.REJECTED: "message.rejected",
    MessageState.EXPIRED: "message.expired",
}


def message_data(message: Message, sequence: int, **extra) -> dict:
    data = {
        "message_id": str(message.pk),
        "sequence": sequence,
        "state": message.state,
        "to": message.recipient or None,
        "recipient": message.recipient_user_id or None,
        "wamid": message.provider_message_id or None,
        "template": (
            {"name": message.template_name, "language": message.template_language}
            if message.kind == "template"
            else None
        ),
        "metadata": message.metadata,
        "state_changed_at": message.state_changed_at.isoformat(),
    }
    if message.pricing_type:
        data["pricing"] = {
            "type": message.pricing_type,
            "category": message.pricing_category,
            "model": message.pricing_model,
        }
    if (
        message.state in (MessageState.FAILED, MessageState.REJECTED, MessageState.EXPIRED)
        and message.error_code
    ):
        data["error"] = {
            "code": message.error_code,
            "title": message.error_title,
            "details": message.error_details,
            "class": message.error_class,
        }
    return data | extra


def notify(changes: dict) -> int:
    """``{message id: (event type, extra data)}`` → one callback each (when the tenant wants
    that type); bumps each message's sequence. Returns how many were written."""
    if not changes:
        return 0
    Message.objects.filter(pk__in=list(changes)).update(
        callbacks_sequence=F("callbacks_sequence") + 1
    )
    by_tenant: dict = defaultdict(list)
    for message in Message.objects.filter(pk__in=list(changes)):
        type_, extra = changes[message.pk]
        by_tenant[message.tenant_id].append(
            Item(
                type=type_,
                data=message_data(message, message.callbacks_sequence, **extra),
                message_id=message.pk,
                sequence=message.callbacks_sequence,
            )
        )
    return sum(
        callbacks_enqueue(tenant_id=tenant_id, items=items)
        for tenant_id, items in by_tenant.items()
    )
