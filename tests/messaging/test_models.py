"""The message table's invariants hold in the database, whoever writes."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.models import Message, MessageKind

from ..factories import SenderNumberFactory


@pytest.mark.parametrize(
    ("kind", "content", "allowed"),
    [
        (MessageKind.TEMPLATE, {"template_name": "order_update"}, True),
        (MessageKind.TEXT, {"text_body": "Hello"}, True),
        (MessageKind.TEMPLATE, {}, False),  # a template message names its template
        (MessageKind.TEMPLATE, {"template_name": "t", "text_body": "x"}, False),
        (MessageKind.TEXT, {}, False),  # a text message has a body
        (MessageKind.TEXT, {"text_body": "x", "template_name": "t"}, False),
    ],
)
def test_a_message_has_the_content_of_its_kind(db, kind, content, allowed):
    sender = SenderNumberFactory()
    message = Message(
        tenant=sender.tenant,
        sender=sender,
        recipient="+4915112345678",
        kind=kind,
        idempotency_key="k",
        request_hash="-",
        state_changed_at=timezone.now(),
        **content,
    )
    if allowed:
        message.save()
        return
    with pytest.raises(IntegrityError), transaction.atomic():
        message.save()
