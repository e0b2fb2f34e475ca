"""Processing stored deliveries: statuses to the ledger in any order and any number of times,
orphans, bad items, inbound messages and opt-outs, template updates, replay."""

import functools
import json
import random
import uuid
from collections import Counter

import pytest
from django.core.management import call_command
from django.utils import timezone

from messaging.models import Contact, InboundMessage, Message, OrphanStatus, Suppression
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, record
from sandbox import wire
from templates_registry.models import MessageTemplate
from webhooks import services
from webhooks.models import WebhookDelivery
from webhooks.services import deliveries_drain

from ..factories import MessageTemplateFactory, SenderNumberFactory
from ..waiting import wait_for
from .helpers import envelope, post, status

pytestmark = pytest.mark.django_db
T0 = 1_750_030_000


@pytest.fixture
def sender():
    return SenderNumberFactory(phone_number_id="pn-1", waba_id="waba-1")


def make_message(sender, wamid=None, index=0) -> Message:
    now = timezone.now()
    message = Message.objects.create(
        tenant=sender.tenant,
        sender=sender,
        recipient=f"+49151{index:08d}",
        template_name="order_update",
        template_language="en_US",
        template_category="UTILITY",
        idempotency_key=f"k-{wamid or index}",
        request_hash="-",
        state_changed_at=now,
        provider_message_id=wamid,
    )
    events = [NewEvent(message.pk, EventType.REQUESTED, EventSource.API)]
    if wamid:
        events.append(NewEvent(message.pk, EventType.ACCEPTED, EventSource.PROVIDER))
    record(events)
    return message


FAILED = [
    {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Unable to deliver"},
    }
]
HISTORIES = [  # (statuses in natural order, expected final state)
    ([("sent", 0), ("delivered", 1), ("read", 2)], "read"),
    ([("sent", 0), ("delivered", 1)], "delivered"),
    ([("sent", 0), ("failed", 1)], "failed"),
    ([("sent", 0), ("delivered", 1), ("failed", 2)], "delivered"),  # second device
    ([("sent", 0), ("read", 1)], "read"),  # read without delivered
]


def history(wamid, kind):
    return [
        status(wamid, name, T0 + dt, errors=FAILED if name == "failed" else None)
        for name, dt in HISTORIES[kind][0]
    ]


def test_duplicated_and_shuffled_histories_end_like_in_order_ones(client, sender):
    in_order = [make_message(sender, f"wamid.a{i}", i) for i in range(100)]
    shuffled = [make_message(sender, f"wamid.b{i}", 100 + i) for i in range(100)]
    for i, message in enumerate(in_order):
        for item in history(message.provider_message_id, i % len(HISTORIES)):
            post(client, envelope("pn-1", statuses=[item]))
            deliveries_drain()
    rng = random.Random(5)
    items = [
        s
        for i, m in enumerate(shuffled)
        for s in history(m.provider_message_id, i % len(HISTORIES))
    ]
    items += rng.sample(items, len(items) // 3)  # a third again, as Meta's retries do
    rng.shuffle(items)
    for start in range(0, len(items), 7):  # batched several to a delivery, like Meta
        post(client, envelope("pn-1", statuses=items[start : start + 7]))
        if rng.random() < 0.3:
            deliveries_drain()
    for start in range(0, len(items), 11):  # whole deliveries redelivered
        post(client, envelope("pn-1", statuses=items[start : start + 11]))
    deliveries_drain()

    for i, (a, b) in enumerate(zip(in_order, shuffled, strict=True)):
        a.refresh_from_db()
        b.refresh_from_db()
        expected = HISTORIES[i % len(HISTORIES)][1]
        assert a.state == b.state == expected, (i, a.state, b.state)
        statuses = len(HISTORIES[i % len(HISTORIES)][0])
        assert b.events.filter(source="webhook").count() == statuses  # each fact once
    assert Message.objects.get(pk=shuffled[2].pk).error_code == "131026"


def test_a_status_matched_by_biz_opaque_callback_data_when_the_wamid_is_unknown(client, sender):
    message = make_message(sender)  # the send response was lost: no wamid
    post(
        client,
        envelope("pn-1", statuses=[status("wamid.x", "delivered", T0, opaque=str(message.pk))]),
    )
    deliveries_drain()
    message.refresh_from_db()
    assert (message.state, message.provider_message_id) == ("delivered", "wamid.x")


def test_an_orphan_is_parked_then_applied_when_its_message_gets_the_wamid(client, sender):
    post(client, envelope("pn-1", statuses=[status("wamid.late", "sent", T0)]))
    counts = deliveries_drain()
    assert counts["orphans"] == 1
    [orphan] = OrphanStatus.objects.all()
    assert orphan.resolved_at is None
    message = make_message(sender)
    Message.objects.filter(pk=message.pk).update(provider_message_id="wamid.late")
    from messaging.track.inbound import orphans_resolve

    assert orphans_resolve(wamids=["wamid.late"]) == 1
    message.refresh_from_db()
    orphan.refresh_from_db()
    assert message.state == "sent" and orphan.resolved_at is not None


def test_statuses_never_cross_tenants(client, sender):
    other = SenderNumberFactory(phone_number_id="pn-other")
    message = make_message(sender, "wamid.mine")
    post(
        client,
        envelope("pn-other", statuses=[status("wamid.mine", "read", T0, opaque=str(message.pk))]),
    )
    deliveries_drain()
    message.refresh_from_db()
    assert message.state == "accepted"
    assert OrphanStatus.objects.get().sender == other


def test_a_batched_payload_with_one_bad_item_applies_the_rest(client, sender):
    first, last = make_message(sender, "wamid.1", 1), make_message(sender, "wamid.3", 3)
    post(
        client,
        envelope(
            "pn-1",
            statuses=[
                status("wamid.1", "delivered", T0),
                {"id": "wamid.2", "status": "sent"},
                status("wamid.3", "read", T0),
            ],
        ),
    )
    counts = deliveries_drain()
    assert counts["item_errors"] == 1 and counts["statuses"] == 2
    assert Message.objects.get(pk=first.pk).state == "delivered"
    assert Message.objects.get(pk=last.pk).state == "read"
    # The item it could not read is recorded on the delivery (replayable), not dropped.
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "partial"
    assert "statuses[1]" in delivery.error and "timestamp" in delivery.error


def inbound(wamid, text, ts=T0, wa_id="4915112345678"):
    return envelope(
        "pn-1",
        messages=[
            {
                "from": wa_id,
                "id": wamid,
                "timestamp": str(ts),
                "type": "text",
                "text": {"body": text},
            }
        ],
        contacts=[{"profile": {"name": "Sheena"}, "wa_id": wa_id}],
    )


def test_inbound_messages_open_the_window_and_stop_opts_out(client, sender, tenant_b):
    now = int(timezone.now().timestamp())
    post(client, inbound("wamid.in1", "Hello there", now))
    post(client, inbound("wamid.in1", "Hello there", now))  # redelivered: one row
    post(client, inbound("wamid.in2", " stop ", now + 1))
    deliveries_drain()
    contact = Contact.objects.get(tenant=sender.tenant)
    assert (contact.wa_id, contact.profile_name) == ("4915112345678", "Sheena")
    assert InboundMessage.objects.count() == 2
    assert Suppression.objects.get(tenant=sender.tenant).recipient == "+4915112345678"
    from messaging.track.inbound import service_window_open

    assert service_window_open(tenant=sender.tenant, recipient="+4915112345678")
    assert not service_window_open(tenant=sender.tenant, recipient="+4915199999999")


def test_inbound_api_is_tenant_scoped(client, tenant_a, tenant_b):
    SenderNumberFactory(tenant=tenant_a.tenant, phone_number_id="pn-1")
    post(client, inbound("wamid.in1", "Hi"))
    deliveries_drain()
    mine = tenant_a.client.get("/api/v1/inbound").json()["results"]
    assert [(m["wa_id"], m["text"]) for m in mine] == [("4915112345678", "Hi")]
    assert tenant_b.client.get("/api/v1/inbound").json()["results"] == []


def template_update(name, event, template_id="", field="message_template_status_update", **extra):
    value = {
        "event": event,
        "message_template_id": int(template_id or 0),
        "message_template_name": name,
        "message_template_language": "en-US",
        "reason": extra.pop("reason", "NONE"),
        **extra,
    }
    return wire.envelope("waba-1", field, value, time=T0)


def test_template_updates_reach_the_registry(client, sender):
    template = MessageTemplateFactory(
        tenant=sender.tenant, name="order_update", status="APPROVED", provider_template_id="555"
    )
    for event, expected in (
        ("PAUSED", "PAUSED"),
        ("REINSTATED", "APPROVED"),
        ("DISABLED", "DISABLED"),
    ):
        post(client, template_update("order_update", event, "555"))
        deliveries_drain()
        template.refresh_from_db()
        assert template.status == expected
    rejected = MessageTemplateFactory(tenant=sender.tenant, name="promo", status="PENDING")
    post(client, template_update("promo", "REJECTED", reason="INVALID_FORMAT"))
    post(
        client,
        template_update(
            "order_update",
            "",
            "555",
            field="message_template_quality_update",
            new_quality_score="RED",
        ),
    )
    deliveries_drain()
    rejected.refresh_from_db()
    assert (rejected.status, rejected.rejection_reason) == ("REJECTED", "INVALID_FORMAT")
    assert MessageTemplate.objects.get(pk=template.pk).quality == "RED"


def test_replay_is_idempotent(client, sender):
    message = make_message(sender, "wamid.r")
    post(
        client,
        envelope(
            "pn-1", statuses=[status("wamid.r", "sent", T0), status("wamid.r", "delivered", T0 + 1)]
        ),
    )
    deliveries_drain()
    before = Counter(message.events.values_list("type", flat=True))
    call_command("replay_webhooks")
    delivery = WebhookDelivery.objects.get()
    call_command("replay_webhooks", "--delivery", str(delivery.pk))
    assert Counter(message.events.values_list("type", flat=True)) == before
    assert Message.objects.get(pk=message.pk).state == "delivered"
    assert json.loads(bytes(delivery.body))["entry"][0]["id"] == "waba-1"


def test_timeline_puts_a_whole_second_webhook_after_our_events_of_that_second(
    client, sender, tenant_a
):
    from messaging.selectors import message_timeline

    message = make_message(sender, "wamid.t")
    second = int(message.created_at.timestamp())  # the same second as our own events
    post(client, envelope("pn-1", statuses=[status("wamid.t", "sent", second)]))
    deliveries_drain()
    types = [e["type"] for e in message_timeline(message=message)]
    assert types == ["requested", "accepted", "status_sent"]


# --- a run stopped by its time budget ---------------------------------------------------------


@pytest.fixture
def processing_runs(monkeypatch):
    """The processor's doorbell with a name of this test's own, its published runs recorded
    (no worker runs here); batches of one delivery, so a few deliveries are several batches."""
    published: list = []

    def publish(queue, args, *, countdown):
        published.append(countdown)
        return True

    monkeypatch.setattr(services._processing, "name", f"webhooks-{uuid.uuid4().hex}")
    monkeypatch.setattr(services._processing, "_publish", publish)
    monkeypatch.setattr(
        services, "deliveries_process", functools.partial(services.deliveries_process, limit=1)
    )
    return published


def store_deliveries(count: int) -> None:
    """Stored as the endpoint stores them, without its ring."""
    for i in range(count):
        body = envelope("pn-1", statuses=[status(f"wamid.b{i}", "sent", T0 + i)])
        services.delivery_store(provider="meta", body=json.dumps(body).encode(), headers={})


def pending() -> int:
    return WebhookDelivery.objects.filter(status="pending").count()


def test_a_run_stopped_by_its_budget_with_work_left_rings_for_the_next_run(processing_runs):
    store_deliveries(3)
    counts = deliveries_drain(budget_seconds=0)  # spent after its first batch
    assert counts["deliveries"] == 1 and pending() == 2
    wait_for(lambda: processing_runs, 10, "the next run published")
    assert processing_runs == [services.PROCESSING_LINGER]
    # That next run (webhooks.process) takes the rest, without waiting for the beat.
    assert deliveries_drain()["deliveries"] == 2 and pending() == 0


def test_a_run_that_empties_the_queue_does_not_ring(processing_runs, monkeypatch):
    kicks: list = []
    monkeypatch.setattr(services, "processing_kick", lambda: kicks.append(1))
    store_deliveries(3)
    assert deliveries_drain()["deliveries"] == 3 and pending() == 0
    assert kicks == []
    assert deliveries_drain(budget_seconds=0) == Counter()  # nothing pending: no ring either
    assert kicks == []
