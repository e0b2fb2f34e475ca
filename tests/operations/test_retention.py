"""Retention on the real database: ``manage.py retention`` prunes (and archives) the ledgers of
settled messages past their tenant's period and keeps each message's summary and final state;
the ledger stays append-only for everyone else; processed webhook deliveries past theirs go."""

import gzip
import hashlib
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.utils import timezone

from core.ids import uuid7
from messaging.models import Message, MessageEvent
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, record
from webhooks.models import DeliveryStatus, WebhookDelivery

from ..conftest import make_tenant_client
from ..factories import SenderNumberFactory, TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

READ = [
    EventType.ACCEPTED,
    EventType.STATUS_SENT,
    EventType.STATUS_DELIVERED,
    EventType.STATUS_READ,
]


def message_in(sender, facts, *, age: timedelta, key: str, created=None) -> Message:
    """A message of ``sender`` with the events ``facts``, last changed ``age`` ago; made at the
    moment ``created`` (its UUIDv7 id says when: the ledger's month) instead of now if given."""
    made_at = {"id": uuid7(created + timedelta(hours=1))} if created is not None else {}
    message = Message.objects.create(
        **made_at,
        tenant=sender.tenant,
        sender=sender,
        recipient="+4915112345678",
        template_name="order_update",
        template_category="UTILITY",
        idempotency_key=key,
        request_hash="-",
        state_changed_at=timezone.now(),
        provider_message_id=f"wamid.{key}",
        error_code="",
    )
    record(
        [NewEvent(message.pk, EventType.REQUESTED, EventSource.API)]
        + [NewEvent(message.pk, t, EventSource.PROVIDER) for t in facts]
    )
    Message.objects.filter(pk=message.pk).update(state_changed_at=timezone.now() - age)
    return Message.objects.get(pk=message.pk)


def run(*args) -> dict:
    from io import StringIO

    out = StringIO()
    call_command("retention", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def sender():
    return SenderNumberFactory(tenant=TenantFactory(ledger_retention_days=30))


def test_prunes_settled_ledgers_past_the_period_and_keeps_the_summary(sender, tmp_path):
    old_read = message_in(sender, READ, age=timedelta(days=40), key="old-read")
    old_failed = message_in(
        sender, [EventType.ACCEPTED, EventType.STATUS_FAILED], age=timedelta(days=31), key="f"
    )
    young = message_in(sender, READ, age=timedelta(days=10), key="young")
    stuck = message_in(sender, [], age=timedelta(days=40), key="queued")  # still queued
    keeper = SenderNumberFactory(tenant=TenantFactory(ledger_retention_days=0))
    forever = message_in(keeper, READ, age=timedelta(days=400), key="forever")

    assert run("--dry-run") == {
        "dry_run": True,
        "ledgers": {"messages": 2, "events": 8, "archives": []},
    }
    assert MessageEvent.objects.count() == 5 + 3 + 5 + 1 + 5  # nothing changed

    report = run("--archive", str(tmp_path))

    assert report["ledgers"]["messages"] == 2 and report["ledgers"]["events"] == 8
    for pruned, state in ((old_read, "read"), (old_failed, "failed")):
        pruned.refresh_from_db()
        assert pruned.ledger_pruned_at is not None
        assert pruned.state == state and pruned.provider_message_id  # the summary stays
        assert not MessageEvent.objects.filter(message=pruned).exists()
    for kept in (young, stuck, forever):
        kept.refresh_from_db()
        assert kept.ledger_pruned_at is None
        assert MessageEvent.objects.filter(message=kept).exists()
    [archive] = report["ledgers"]["archives"]
    with gzip.open(archive, "rt") as lines:
        archived = [json.loads(line) for line in lines]
    assert len(archived) == 8
    assert {a["type"] for a in archived if a["message_id"] == str(old_read.pk)} == {
        "requested",
        "accepted",
        "status_sent",
        "status_delivered",
        "status_read",
    }
    assert run()["ledgers"]["messages"] == 0  # a second run finds nothing left


def test_the_ledger_stays_append_only_outside_a_retention_purge(sender):
    message = message_in(sender, READ, age=timedelta(days=40), key="guarded")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MessageEvent.objects.filter(message=message).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MessageEvent.objects.filter(message=message).update(detail={"forged": True})
    assert MessageEvent.objects.filter(message=message).count() == 5


def test_one_tenant_only(sender):
    other = SenderNumberFactory(tenant=TenantFactory(ledger_retention_days=30))
    mine = message_in(sender, READ, age=timedelta(days=40), key="mine")
    theirs = message_in(other, READ, age=timedelta(days=40), key="theirs")
    report = run("--tenant", sender.tenant.slug)
    assert report["ledgers"]["messages"] == 1 and "webhook_deliveries" not in report
    assert MessageEvent.objects.filter(message=mine).count() == 0
    assert MessageEvent.objects.filter(message=theirs).count() == 5


@pytest.mark.parametrize(
    ("status", "age_days", "deleted"),
    [
        (DeliveryStatus.PROCESSED, 31, True),
        (DeliveryStatus.INVALID, 31, True),
        (DeliveryStatus.PROCESSED, 5, False),
        (DeliveryStatus.PENDING, 31, False),
        (DeliveryStatus.FAILED, 31, False),
        (DeliveryStatus.PARTIAL, 31, False),
    ],
)
def test_processed_webhook_deliveries_past_their_retention_go(status, age_days, deleted):
    body = json.dumps({"n": f"{status}-{age_days}"}).encode()
    delivery = WebhookDelivery.objects.create(
        provider="meta",
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        headers={},
        status=status,
        received_at=timezone.now() - timedelta(days=age_days),
    )
    assert run()["webhook_deliveries"] == int(deleted)
    assert WebhookDelivery.objects.filter(pk=delivery.pk).exists() is not deleted


def test_the_api_and_the_admin_say_the_ledger_was_pruned(admin_client):
    shop = make_tenant_client(ledger_retention_days=30)
    message = message_in(shop.tenant.senders.get(), READ, age=timedelta(days=40), key="said")
    run()
    detail = shop.client.get(f"/api/v1/messages/{message.pk}").json()
    assert detail["state"] == "read" and detail["events"] == []
    assert detail["ledger_pruned_at"] is not None
    page = admin_client.get(f"/admin/messaging/message/{message.pk}/change/").content.decode()
    assert "The ledger was pruned for retention on" in page
