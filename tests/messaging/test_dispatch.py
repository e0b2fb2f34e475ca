"""Dispatch's debouncing (both stores: Redis and in-process) and nudges, without a worker.

Publishing is replaced by a recorder here (unit tests of this module); the integration tests
in test_dispatch_live.py run the real thing."""

import time
import uuid

import pytest
from django.conf import settings

from core import coordination
from messaging.send import dispatch
from tenants.models import Tenant

from ..waiting import wait_for


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def store(request):
    return (
        coordination.LocalStore()
        if request.param == "local"
        else coordination.RedisStore(settings.REDIS_URL)
    )


@pytest.fixture
def tenant_id():
    return str(uuid.uuid4())


def test_a_pending_drain_absorbs_further_nudges_until_it_starts(store, tenant_id):
    assert store.mark_pending(tenant_id, ttl=60) is True
    assert store.mark_pending(tenant_id, ttl=60) is False
    store.clear_pending(tenant_id)  # the drain started
    assert store.mark_pending(tenant_id, ttl=60) is True


def test_a_lost_drain_stops_absorbing_nudges_after_its_ttl(store, tenant_id):
    assert store.mark_pending(tenant_id, ttl=1) is True
    # Never started, its mark expires (the store's own clock: Redis's TTL); a nudge is fresh.
    wait_for(lambda: store.mark_pending(tenant_id, ttl=1), 10, "the pending mark expired")


def test_only_the_earliest_wake_up_is_scheduled(store, tenant_id):
    now = time.time()
    kw = {"tolerance": 0.05, "grace": 0.25}
    assert store.mark_wake(tenant_id, at=now + 10, **kw) is True
    assert store.mark_wake(tenant_id, at=now + 20, **kw) is False  # the 10 s one covers it
    assert store.mark_wake(tenant_id, at=now + 5, **kw) is True  # earlier: scheduled too
    assert store.mark_wake(tenant_id, at=now + 5.01, **kw) is False  # merged


def test_a_wake_up_about_to_fire_does_not_count_as_pending(store, tenant_id):
    now = time.time()
    kw = {"tolerance": 0.05, "grace": 0.25}
    assert store.mark_wake(tenant_id, at=now + 0.1, **kw) is True
    # A drain woken a little early finds its own wake-up still "in the future": it must be
    # able to schedule the next one rather than rely on the one that is firing.
    assert store.mark_wake(tenant_id, at=now + 0.1, **kw) is True


@pytest.fixture
def published(monkeypatch):
    calls = []
    monkeypatch.setattr(
        dispatch._drains,
        "_publish",
        lambda queue, args, countdown: calls.append((args[0], queue, countdown)) or True,
    )
    return calls


@pytest.mark.redis
def test_nudges_publish_one_drain_per_tenant_until_it_starts(published, tenant_id):
    for _ in range(5):
        dispatch.nudge(tenant_id=tenant_id, queue="tenant.x")
    assert published == [(tenant_id, "tenant.x", None)]
    dispatch.drain_started(tenant_id)
    dispatch.nudge(tenant_id=tenant_id, queue="tenant.x")
    assert len(published) == 2


def test_a_failed_publish_lets_the_next_nudge_try_again(monkeypatch, tenant_id):
    attempts = []
    monkeypatch.setattr(dispatch._drains, "_publish", lambda *a, **kw: attempts.append(a) and False)
    assert dispatch.nudge(tenant_id=tenant_id, queue="tenant.x") is False
    assert dispatch.nudge(tenant_id=tenant_id, queue="tenant.x") is False
    assert len(attempts) == 2  # not absorbed by the debounce key of a drain never published


def test_wake_ups_are_capped_at_the_countdown_maximum(published, tenant_id, settings):
    settings.WAYPOST_COUNTDOWN_MAX = 300
    dispatch.wake(tenant_id=tenant_id, queue="tenant.x", delay=86_400)
    [(_, _, countdown)] = published
    assert countdown == 300  # a long wait is a chain of wake-ups, not a day-long countdown


@pytest.mark.django_db
def test_the_sweep_announces_queues_again_a_lost_broadcast_cannot_strand_a_tenant(
    tenant_a, monkeypatch, settings
):
    """The first announcement can be lost (Redis restarted before the workers read it); the
    process remembers it as done, so only the sweep repeating it brings the queue back."""
    from messaging.sweeps import messages_redrive

    from ..factories import MessageTemplateFactory
    from .helpers import body

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # not the in-memory broker
    announced = []
    monkeypatch.setattr(
        dispatch.app.control, "add_consumer", lambda queue, reply: announced.append(queue)
    )
    monkeypatch.setattr(dispatch, "nudge", lambda **kw: True)
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(dedicated_queue=True)
    tenant_a.tenant.refresh_from_db()
    dispatch._announced.add(tenant_a.tenant.queue_name)  # "done" in this process
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    tenant_a.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    messages_redrive()
    messages_redrive()
    assert announced == [f"tenant.{tenant_a.tenant.slug}"] * 2


def test_a_shared_queue_is_never_announced(monkeypatch, settings):
    """Every worker consumes the shared lanes from its start: a tenant without a queue of its
    own costs the workers no broadcast, and its first message waits for none."""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    announced = []
    monkeypatch.setattr(
        dispatch.app.control, "add_consumer", lambda queue, reply: announced.append(queue)
    )
    for queue in ("send.0", "bulk.1"):
        assert dispatch.announce_queue(queue, again=True)
    assert dispatch.announce_queue("tenant.big")
    assert announced == ["tenant.big"]


@pytest.mark.django_db
@pytest.mark.redis
def test_a_backlog_is_rung_on_the_bulk_lane_a_single_send_on_the_express_one(
    tenant_a, published, settings, django_capture_on_commit_callbacks
):
    """What the API brings decides the lane of the drain it rings (``core.queues``): a request
    of a full batch or more is a backlog; a single send is not."""
    from ..factories import MessageTemplateFactory
    from .helpers import body

    settings.WAYPOST_BATCH_SIZE = 3
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    tenant = tenant_a.tenant
    with django_capture_on_commit_callbacks(execute=True):  # the nudge follows the commit
        answer = tenant_a.client.post(
            "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY="one"
        )
    assert answer.status_code == 202
    dispatch.drain_started(tenant.pk)  # the drain ran: the next request rings again
    items = [
        {"idempotency_key": f"b{i}", **body(template, to=f"+491511234567{i}")} for i in range(3)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        answer = tenant_a.client.post("/api/v1/messages/batch", {"messages": items}, format="json")
    assert answer.status_code == 200
    assert [queue for _, queue, _ in published] == [tenant.queue_name, tenant.bulk_queue_name]
    assert tenant.queue_name.startswith("send.") and tenant.bulk_queue_name.startswith("bulk.")


@pytest.mark.redis
def test_a_worker_reads_queues_of_ours_no_longer_named_while_they_hold_tasks(settings):
    """A tenant's own queue taken away, a lane dropped: what is on them is still read."""
    from core.coordination import redis_client

    settings.CELERY_BROKER_URL = settings.REDIS_URL
    client = redis_client(settings.REDIS_URL)
    stranded = ["tenant.gone", "send.9\x06\x163", "bulk.7"]
    try:
        for key in stranded:
            client.rpush(key, "{}")
        client.rpush("unrelated", "{}")
        found = dispatch.leftover_queues()
        assert {"tenant.gone", "send.9", "bulk.7"} <= found and "unrelated" not in found
    finally:
        client.delete(*stranded, "unrelated")
