"""The reconciler's rules on the real database (no worker): what each flags, that a pass is
safe to run twice at once, that a late status clears a stall, and that the schedule is a
django-celery-beat row from a data migration."""

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from messaging.models import Message, OrphanStatus
from messaging.states import EventSource, EventType
from messaging.track.inbound import statuses_apply
from messaging.track.ledger import NewEvent, record
from operations.reconciler import reconcile
from webhooks.models import WebhookDelivery
from whatsapp.reports import StatusReport

from ..factories import SenderNumberFactory, TenantFactory
from ..webhooks.helpers import envelope, status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sender():
    return SenderNumberFactory(
        tenant=TenantFactory(stall_accepted_seconds=60, stall_sent_seconds=120)
    )


def message_in(sender, facts, *, age: timedelta, category="UTILITY", key=None):
    message = Message.objects.create(
        tenant=sender.tenant,
        sender=sender,
        recipient="+4915112345678",
        template_category=category,
        idempotency_key=key or str(datetime.now().timestamp()),
        request_hash="-",
        template_name="order_update",
        state_changed_at=timezone.now(),
        provider_message_id=f"wamid.{key}",
    )
    record([NewEvent(message.pk, t, EventSource.PROVIDER) for t in facts])
    Message.objects.filter(pk=message.pk).update(state_changed_at=timezone.now() - age)
    return Message.objects.get(pk=message.pk)


def test_stall_rules_flag_each_message_once_with_its_reason(sender):
    young = message_in(sender, [EventType.ACCEPTED], age=timedelta(seconds=30), key="young")
    quiet = message_in(sender, [EventType.ACCEPTED], age=timedelta(seconds=90), key="quiet")
    sent = message_in(
        sender, [EventType.ACCEPTED, EventType.STATUS_SENT], age=timedelta(minutes=3), key="sent"
    )
    otp = message_in(
        sender,
        [EventType.ACCEPTED, EventType.STATUS_SENT],
        age=timedelta(minutes=11),
        category="AUTHENTICATION",
        key="otp",
    )
    held = message_in(
        sender, [EventType.ACCEPTED, EventType.HELD], age=timedelta(minutes=61), key="held"
    )
    delivered = message_in(
        sender,
        [EventType.ACCEPTED, EventType.STATUS_DELIVERED],
        age=timedelta(days=2),
        key="delivered",
    )
    counts = reconcile()
    assert counts["stalled.accepted_no_status"] == 1
    assert counts["stalled.sent_not_delivered"] == 1
    assert counts["stalled.auth_ttl_passed"] == 1
    assert counts["stalled.held_too_long"] == 1
    expected = {
        quiet.pk: "accepted_no_status",
        sent.pk: "sent_not_delivered",
        otp.pk: "auth_ttl_passed",
        held.pk: "held_too_long",
    }
    for pk, reason in expected.items():
        message = Message.objects.get(pk=pk)
        assert (message.stalled, message.stalled_reason) == (True, reason)
        [event] = message.events.filter(type="flagged_stalled")
        assert event.source == "reconciler" and event.detail["reason"] == reason
    assert not Message.objects.get(pk=young.pk).stalled  # within its tenant's threshold
    assert not Message.objects.get(pk=delivered.pk).stalled  # no `read` is normal
    assert "stalled.accepted_no_status" not in reconcile()  # flagged once


def test_two_passes_at_once_flag_each_message_once(sender):
    ids = [
        message_in(sender, [EventType.ACCEPTED], age=timedelta(minutes=5), key=f"c{i}").pk
        for i in range(30)
    ]
    results = []

    def run():
        results.append(reconcile())
        connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flagged = sum(r.get("stalled.accepted_no_status", 0) for r in results)
    assert flagged == 30
    for pk in ids:
        assert Message.objects.get(pk=pk).events.filter(type="flagged_stalled").count() == 1


def test_a_late_status_clears_the_stall_and_says_so(sender):
    message = message_in(
        sender, [EventType.ACCEPTED, EventType.STATUS_SENT], age=timedelta(minutes=3), key="l"
    )
    reconcile()
    assert Message.objects.get(pk=message.pk).stalled
    statuses_apply(
        reports=[
            StatusReport(
                phone_number_id=sender.phone_number_id,
                wamid=message.provider_message_id,
                status="delivered",
                occurred_at=datetime.now(UTC),
            )
        ]
    )
    message.refresh_from_db()
    assert (message.state, message.stalled, message.stalled_reason) == ("delivered", False, "")
    [cleared] = message.events.filter(type="stall_cleared")
    assert cleared.detail["cleared_by_state"] == "delivered"
    assert cleared.detail["reason"] == "sent_not_delivered"


def test_a_duplicate_of_a_seen_status_does_not_clear_a_stall(sender):
    message = message_in(
        sender, [EventType.ACCEPTED, EventType.STATUS_SENT], age=timedelta(minutes=3), key="d"
    )
    reconcile()
    statuses_apply(
        reports=[
            StatusReport(
                phone_number_id=sender.phone_number_id,
                wamid=message.provider_message_id,
                status="sent",
                occurred_at=datetime.now(UTC),
            )
        ]
    )
    assert Message.objects.get(pk=message.pk).stalled


def test_old_orphans_expire_and_overdue_webhooks_are_processed(sender, settings):
    settings.WAYPOST_ORPHAN_TTL = 3600
    settings.WAYPOST_WEBHOOK_LAG_ALERT = 60
    old = OrphanStatus.objects.create(wamid="wamid.x", report={}, dedupe_key="o1")
    OrphanStatus.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(hours=2))
    fresh = OrphanStatus.objects.create(wamid="wamid.y", report={}, dedupe_key="o2")
    message = message_in(sender, [EventType.ACCEPTED], age=timedelta(seconds=1), key="w")
    body = json.dumps(
        envelope(
            sender.phone_number_id,
            statuses=[status(message.provider_message_id, "sent", 1750030073)],
        )
    ).encode()
    WebhookDelivery.objects.create(
        provider="meta",
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        headers={},
        received_at=timezone.now() - timedelta(minutes=5),
    )
    counts = reconcile()
    assert counts["orphans.expired"] == 1 and counts["webhooks.overdue"] == 1
    assert OrphanStatus.objects.get(pk=old.pk).expired_at is not None
    assert OrphanStatus.objects.get(pk=fresh.pk).expired_at is None
    assert WebhookDelivery.objects.get().status == "processed"
    assert Message.objects.get(pk=message.pk).state == "sent"


def test_the_schedule_is_a_beat_row_made_by_a_data_migration():
    from django_celery_beat.models import PeriodicTask

    call_command("migrate", "operations", "zero", verbosity=0)
    assert not PeriodicTask.objects.filter(task="operations.reconcile").exists()
    call_command("migrate", "operations", verbosity=0)
    reconcile_job = PeriodicTask.objects.get(task="operations.reconcile")
    assert (reconcile_job.interval.every, reconcile_job.interval.period) == (60, "seconds")
    assert PeriodicTask.objects.get(task="webhooks.process").interval.every == 5


def test_an_unknown_submit_past_its_grace_is_resolved_by_its_rule(sender):
    message = message_in(
        sender,
        [EventType.SUBMIT_STARTED, EventType.SUBMIT_UNKNOWN],
        age=timedelta(hours=1),
        key="u",
    )
    counts = reconcile()
    assert counts["unknown.held"] == 1
    assert Message.objects.get(pk=message.pk).stalled_reason == "unknown_outcome"


def test_a_status_applied_after_the_rule_chose_the_message_leaves_it_unflagged(sender):
    """The rule picks its candidates, then locks them: a ``delivered`` applied in between (the
    webhook won the race) must not get the message flagged, nor a ``message.stalled``
    callback sent for a delivered message."""
    from django.db.models import Q

    from messaging.states import MessageState, StallReason
    from messaging.track.stalls import stalls_mark

    quiet = message_in(sender, [EventType.ACCEPTED], age=timedelta(minutes=5), key="raced")
    chosen = {quiet.pk: StallReason.ACCEPTED_NO_STATUS}  # the rule's choice, before the lock
    record([NewEvent(quiet.pk, EventType.STATUS_DELIVERED, EventSource.PROVIDER)])

    assert stalls_mark(reasons=chosen, still=Q(state=MessageState.ACCEPTED)) == {}
    quiet.refresh_from_db()
    assert quiet.state == MessageState.DELIVERED and not quiet.stalled
    assert not quiet.events.filter(type=EventType.FLAGGED_STALLED).exists()
