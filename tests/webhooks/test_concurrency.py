"""Concurrent webhook processors over shuffled batches that touch the same messages: no
deadlock fails a delivery, every status is applied once, and a transient database error
leaves deliveries pending and retried — never ``failed``."""

import hashlib
import json
import logging
import random
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from core.db import is_transient
from messaging.models import Message, MessageEvent
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, record
from webhooks.models import WebhookDelivery
from webhooks.services import deliveries_process

from ..factories import SenderNumberFactory
from .helpers import envelope, status

pytestmark = pytest.mark.django_db(transaction=True)
T0 = 1_750_030_000


@pytest.fixture
def sender(transactional_db):
    return SenderNumberFactory(phone_number_id="pn-c", waba_id="waba-c")


def messages(sender, count):
    made = []
    for i in range(count):
        message = Message.objects.create(
            tenant=sender.tenant,
            sender=sender,
            recipient=f"+49151{i:08d}",
            idempotency_key=f"c-{i}",
            request_hash="-",
            template_name="order_update",
            state_changed_at=timezone.now(),
            provider_message_id=f"wamid.c{i}",
        )
        with transaction.atomic():
            record([NewEvent(message.pk, EventType.ACCEPTED, EventSource.PROVIDER)])
        made.append(message)
    return made


def store(bodies):
    for body in bodies:
        raw = json.dumps(body).encode()
        WebhookDelivery.objects.create(
            provider="meta",
            body=raw,
            body_sha256=hashlib.sha256(raw).hexdigest(),
            headers={},
            received_at=timezone.now(),
        )


def transient_retries(caplog) -> list[str]:
    """The transactions ``core.db.retry_transient`` ran again in this process (a deadlock
    PostgreSQL broke among them) — its warnings, which no other process can add to."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "core.db" and "hit a transient database error" in r.getMessage()
    ]


def run_concurrently(processors: int, limit: int):
    failures = []

    def processor():
        try:
            while deliveries_process(limit=limit):
                pass
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=processor) for _ in range(processors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def test_concurrent_processors_over_shuffled_batches_never_fail_a_delivery(sender, caplog):
    caplog.set_level(logging.WARNING, logger="core.db")
    rnd = random.Random(8)
    made = messages(sender, 40)
    statuses = [
        status(m.provider_message_id, name, T0 + k)
        for m in made
        for k, name in enumerate(("sent", "delivered", "read"))
    ]
    bodies = []
    for _ in range(60):  # each delivery: 20 statuses of random messages, in random order
        bodies.append(envelope("pn-c", statuses=rnd.sample(statuses, 20)))
    store(bodies)
    assert run_concurrently(processors=4, limit=3) == []
    # Locks taken in one order: no deadlock to break, so no transaction had to run again.
    assert transient_retries(caplog) == []
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"processed"}
    for m in made:
        delivered = {
            s["status"]
            for b in bodies
            for s in b["entry"][0]["changes"][0]["value"]["statuses"]
            if s["id"] == m.provider_message_id
        }
        expected = (
            "read" if "read" in delivered else "delivered" if "delivered" in delivered else "sent"
        )
        assert Message.objects.get(pk=m.pk).state == (expected if delivered else "accepted")
    # Each fact once, however many deliveries carried it.
    applied = MessageEvent.objects.filter(source="webhook").count()
    assert applied == len(
        {
            (s["id"], s["status"])
            for b in bodies
            for s in b["entry"][0]["changes"][0]["value"]["statuses"]
        }
    )


def test_a_transient_error_is_retried_not_recorded_as_a_failure(sender, caplog):
    caplog.set_level(logging.WARNING, logger="core.db")
    [message] = messages(sender, 1)
    store([envelope("pn-c", statuses=[status(message.provider_message_id, "delivered", T0)])])
    holding, release = threading.Event(), threading.Event()

    def hold_the_row():
        with transaction.atomic():
            Message.objects.select_for_update().get(pk=message.pk)
            holding.set()
            release.wait(5)
        connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    holding.wait(5)
    threading.Timer(0.4, release.set).start()
    with connection.cursor() as cursor:  # our processor gives up waiting quickly: 55P03
        cursor.execute("SET lock_timeout = '100ms'")
    try:
        counts = deliveries_process()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        holder.join()
    assert counts["deliveries"] == 1
    assert transient_retries(caplog)  # what the test above counts (none there)
    assert WebhookDelivery.objects.get().status == "processed"
    assert Message.objects.get(pk=message.pk).state == "delivered"


def test_transient_errors_are_recognised():
    from django.db import OperationalError

    class Deadlock(Exception):
        sqlstate = "40P01"

    class Unique(Exception):
        sqlstate = "23505"

    deadlock, unique = OperationalError("deadlock"), OperationalError("unique")
    deadlock.__cause__, unique.__cause__ = Deadlock(), Unique()
    assert is_transient(deadlock) and not is_transient(unique)
    assert not is_transient(ValueError("a bug"))
