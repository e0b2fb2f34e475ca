"""``core.db.bulk_update`` on PostgreSQL: one statement, the same rows as Django's, for every
kind of field the pipeline updates (uuid key, foreign key, JSON, dates and NULLs, text,
small integers, booleans)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.db import bulk_update
from messaging.models import Message

from ..factories import SenderNumberFactory

pytestmark = pytest.mark.django_db


def make(sender, n: int) -> list[Message]:
    return [
        Message.objects.create(
            tenant=sender.tenant,
            sender=sender,
            recipient=f"+49151123456{n:02d}",
            template_name="t",
            idempotency_key=f"k{n}",
            request_hash="-",
            state_changed_at=timezone.now(),
            next_attempt_at=timezone.now(),
        )
        for n in range(n)
    ]


def test_updates_each_row_with_its_own_values_in_one_statement():
    sender = SenderNumberFactory()
    other = SenderNumberFactory(tenant=sender.tenant)
    messages = make(sender, 3)
    soon = timezone.now() + timedelta(minutes=5)
    for i, m in enumerate(messages):
        m.provider_message_id = f"wamid.{i}"
        m.attempts = i + 1
        m.metadata = {"to": m.recipient, "n": [i, "ü"]}
        m.next_attempt_at = None if i == 0 else soon
        m.billable = [None, True, False][i]
        m.sender = other if i == 2 else sender
        m.error_title = 'it\'s "quoted"; --'
    fields = ["provider_message_id", "attempts", "metadata", "next_attempt_at", "billable"]
    with CaptureQueriesContext(connection) as queries:
        bulk_update(messages, [*fields, "sender", "error_title"])
    assert len(queries) == 1
    for i, stored in enumerate(Message.objects.filter(pk__in=[m.pk for m in messages])):
        i = int(stored.idempotency_key[1:])
        assert stored.provider_message_id == f"wamid.{i}"
        assert stored.attempts == i + 1
        assert stored.metadata == {"to": stored.recipient, "n": [i, "ü"]}
        assert stored.next_attempt_at == (None if i == 0 else soon)
        assert stored.billable is [None, True, False][i]
        assert stored.sender_id == (other.pk if i == 2 else sender.pk)
        assert stored.error_title == 'it\'s "quoted"; --'


def test_nothing_to_do_is_no_query():
    with CaptureQueriesContext(connection) as queries:
        bulk_update([], ["attempts"])
        bulk_update(make(SenderNumberFactory(), 1), [])
    assert not [q for q in queries if q["sql"].startswith("UPDATE")]
