"""Two beats by mistake do no harm: every periodic job — whatever the beat's rows name, so a
job added later is covered too — run twice at once, in two threads on the real database, does
its work once. A second beat (a deploy that started one on two hosts) or a reconciler pass
published after a broker reconnect while the beat's own runs are exactly this."""

import hashlib
import json
import threading
from collections import Counter
from datetime import timedelta
from importlib import import_module

import pytest
from celery import current_app
from django.apps import apps
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from callbacks.models import CallbackEndpoint, CallbackEvent
from callbacks.services import Item, callbacks_enqueue
from messaging.models import Message, MessageEvent, OrphanStatus
from messaging.states import EventSource, EventType
from operations.rollup import rollup_refresh, states_since
from webhooks.models import WebhookDelivery

from ..webhooks.helpers import envelope, status
from .test_reconciler import message_in, sender  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

SCHEDULES = (
    "operations.migrations.0001_reconcile_schedule",
    "operations.migrations.0002_sender_health_schedule",
    "campaigns.migrations.0002_overdue_schedule",
    "operations.migrations.0003_partitions_schedule",
    "operations.migrations.0005_rollup_schedule",
)
KNOWN = {
    "operations.reconcile",
    "webhooks.process",
    "operations.poll_sender_health",
    "campaigns.overdue",
    "operations.partitions",
    "operations.rollup",
}


def stored_status(sender, message, state: str, *, age: timedelta) -> WebhookDelivery:  # noqa: F811
    body = json.dumps(
        envelope(sender.phone_number_id, statuses=[status(message.provider_message_id, state, 1)])
    ).encode()
    return WebhookDelivery.objects.create(
        provider="meta",
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        headers={},
        received_at=timezone.now() - age,
    )


def test_every_periodic_job_run_twice_at_once_does_its_work_once(sender, settings):  # noqa: F811
    settings.WAYPOST_ORPHAN_TTL = 3600
    settings.WAYPOST_WEBHOOK_LAG_ALERT = 60
    stalled = [
        message_in(sender, [EventType.ACCEPTED], age=timedelta(minutes=5), key=f"s{i}")
        for i in range(10)
    ]
    unknown = message_in(
        sender,
        [EventType.SUBMIT_STARTED, EventType.SUBMIT_UNKNOWN],
        age=timedelta(hours=1),
        key="u",
    )
    lagging = message_in(sender, [EventType.ACCEPTED], age=timedelta(seconds=1), key="lag")
    fresh = message_in(sender, [EventType.ACCEPTED], age=timedelta(seconds=1), key="fresh")
    stored_status(sender, lagging, "sent", age=timedelta(minutes=5))  # the lag rule's
    stored_status(sender, fresh, "delivered", age=timedelta(seconds=0))  # the 5-second job's
    orphan = OrphanStatus.objects.create(wamid="wamid.gone", report={}, dedupe_key="o1")
    OrphanStatus.objects.filter(pk=orphan.pk).update(
        received_at=timezone.now() - timedelta(hours=2)
    )
    CallbackEndpoint.objects.create(
        tenant=sender.tenant, url="https://93.184.216.34/hook", event_types=["message.read"]
    )
    callbacks_enqueue(
        tenant_id=sender.tenant_id,
        items=[Item(type="message.read", message_id=None, sequence=1, data={})],
    )
    assert CallbackEvent.objects.update(retry_until=timezone.now() - timedelta(minutes=1)) == 1

    current_app.loader.import_default_modules()  # every app's tasks, as a worker loads them
    for module in SCHEDULES:  # the beat's rows, as the data migrations make them (a flush of an
        import_module(module).create(apps, None)  # earlier transactional test removed them)
    jobs = list(PeriodicTask.objects.filter(enabled=True).values_list("task", flat=True))
    assert set(jobs) >= KNOWN, jobs  # the beat's rows, as the data migrations made them
    barrier, results, failures = threading.Barrier(2), [], []

    def beat() -> None:
        try:
            barrier.wait(timeout=10)
            for name in jobs:
                results.append((name, current_app.tasks[name].apply(throw=True).result))
        except Exception as exc:  # reported below
            failures.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures

    done = Counter()
    for name, result in results:  # each job's counts (campaigns.overdue answers a number)
        if isinstance(result, dict):
            done.update({f"{name}:{key}": n for key, n in result.items()})
    # Each piece of work was done once between the two beats, not twice.
    assert done["operations.reconcile:stalled.accepted_no_status"] == 10
    assert done["operations.reconcile:unknown.held"] == 1
    assert done["operations.reconcile:orphans.expired"] == 1
    assert done["operations.reconcile:callbacks.expired"] == 1
    health = sum(v for k, v in done.items() if k.startswith("operations.poll_sender_health:"))
    assert health == 1  # the one sender asked once (the provider's answer does not matter here)
    # ... and the ledger says so: one reconciler event per message and kind, one status each.
    by_kind = Counter(
        MessageEvent.objects.filter(source=EventSource.RECONCILER).values_list("message_id", "type")
    )
    assert by_kind and max(by_kind.values()) == 1, by_kind
    assert all(Message.objects.get(pk=m.pk).stalled for m in stalled)
    assert Message.objects.get(pk=unknown.pk).stalled_reason == "unknown_outcome"
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"processed"}
    for message, applied in ((lagging, EventType.STATUS_SENT), (fresh, EventType.STATUS_DELIVERED)):
        assert MessageEvent.objects.filter(message_id=message.pk, type=applied).count() == 1
    assert CallbackEvent.objects.get().status == "dead"
    # The rollup counted each bucket, in turn: the page's counts are the messages' own.
    rollup_refresh()  # once more, after both beats: whatever order the jobs ran in
    now = timezone.now()
    day = now - timedelta(days=1)
    live = Counter(Message.objects.filter(created_at__gte=day).values_list("state", flat=True))
    rolled, at = states_since(tenant_ids=[sender.tenant_id], since=day, now=now)
    assert at is not None and rolled == dict(live)
