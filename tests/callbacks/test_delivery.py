"""Callback delivery with real processes: the API and a Celery worker make the changes, the
deliverer process (``manage.py deliver_callbacks``) delivers them to local receivers, and a
client verifies them with the Standard Webhooks library."""

import json
import statistics
import time
from datetime import datetime

import pytest
from standardwebhooks.webhooks import Webhook

from callbacks.models import CallbackEvent
from core.coordination import Doorbell
from devtools.servers import start_receiver
from devtools.worker import CallbackDeliverer, worker_env
from messaging.models import Message
from messaging.track.inbound import statuses_apply
from whatsapp.reports import StatusReport

from ..messaging.conftest import make_live_tenant, send_batch, wait_states
from ..waiting import wait_for

pytestmark = pytest.mark.redis
EVENTS = ["message.delivered", "message.read", "message.failed"]


def subscribe(tenant, receiver) -> str:
    answer = tenant.client.patch(
        "/api/v1/tenant",
        {"callback_url": receiver.url, "callback_events": EVENTS},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    return answer.json()["callback_secret"]


def deliver_statuses(tenant, ids, status="delivered"):
    """Statuses for ``ids``, as the webhook processor would apply them."""
    for message in Message.objects.filter(pk__in=ids):
        statuses_apply(
            reports=[
                StatusReport(
                    phone_number_id=tenant.sender.phone_number_id,
                    wamid=message.provider_message_id,
                    status=status,
                    occurred_at=datetime.now().astimezone(),
                )
            ]
        )


def wait_delivered(receiver, count, timeout=60.0):
    """Until the receiver has answered 2xx for ``count`` distinct webhook-ids."""

    def distinct() -> int:
        return len({h["webhook-id"] for _, h, _ in receiver.delivered()})

    try:
        wait_for(lambda: distinct() >= count, timeout, f"{count} callbacks delivered")
    except AssertionError as exc:
        raise AssertionError(f"{exc} ({distinct()} were)") from None


def wait_deliverer_listening():
    """Until the deliverer process waits on its doorbell (``callbacks.deliverer``'s bell): a
    fresh ring stays pending until the deliverer takes it, then the next ring is fresh again.
    (Polled for less than a pending ring's 60 s TTL: only the deliverer can clear it.)"""
    bell = Doorbell("callbacks")
    bell.answered()
    bell.ring()
    wait_for(bell.ring, 30, "the callback deliverer taking a ring from its doorbell")


def verified(receiver, secret) -> dict:
    """{webhook-id: body} for every 2xx-answered request, each verified with the library."""
    webhook, seen = Webhook(secret), {}
    for _, headers, body in receiver.delivered():
        data = webhook.verify(body, {k.lower(): v for k, v in headers.items()})
        seen.setdefault(headers["webhook-id"], []).append(data)
    return seen


def test_a_receiver_failing_twice_gets_every_event_once_verified(worker_process, live, capsys):
    receiver, server = start_receiver(fail_first=2)
    deliverer = CallbackDeliverer(worker_env(live.url))
    try:
        tenant = make_live_tenant(live, "cbfail")
        secret = subscribe(tenant, receiver)
        ids = send_batch(tenant, 20, "cb")
        wait_states(ids, {"accepted"})
        deliver_statuses(tenant, ids, "delivered")
        deliver_statuses(tenant, ids, "read")
        wait_delivered(receiver, 40)
    finally:
        deliverer.stop()
        server.shutdown()
    seen = verified(receiver, secret)
    assert len(seen) == 40
    # No webhook-id stands for two different events; each event under one id.
    assert all(
        len({json.dumps(d, sort_keys=True) for d in bodies}) == 1 for bodies in seen.values()
    )
    events = {(d[0]["data"]["message_id"], d[0]["type"]) for d in seen.values()}
    assert events == {(m, t) for m in ids for t in ("message.delivered", "message.read")}
    for bodies in seen.values():  # per-message order: delivered (1) before read (2)
        data = bodies[0]["data"]
        assert data["sequence"] == (1 if bodies[0]["type"] == "message.delivered" else 2)
    assert sum(1 for *_, code in receiver.requests if code == 503) == 2
    lag = [
        t - CallbackEvent.objects.get(pk=h["webhook-id"][4:]).created_at.timestamp()
        for t, h, _ in receiver.delivered()
    ]
    with capsys.disabled():
        print(
            f"\n[callbacks] 40 delivered; from the state change to the receiver's 200: "
            f"p50 {statistics.median(lag) * 1000:.0f} ms, max {max(lag) * 1000:.0f} ms "
            "(including two 503s and the backoff after them)"
        )


def test_nothing_is_lost_when_the_deliverer_is_killed_mid_delivery(worker_process, live, settings):
    receiver, server = start_receiver(delay=2.0)
    env = worker_env(live.url, WAYPOST_CALLBACK_LEASE="3")
    deliverer = CallbackDeliverer(env)
    try:
        tenant = make_live_tenant(live, "cbkill")
        secret = subscribe(tenant, receiver)
        ids = send_batch(tenant, 5, "kill")
        wait_states(ids, {"accepted"})
        deliver_statuses(tenant, ids, "delivered")
        wait_for(lambda: receiver.arrived, 30, "the first callback in flight at the receiver")
        deliverer.kill()
        receiver.delay = 0
        deliverer = CallbackDeliverer(env)  # a new one, after the lease, delivers them all
        wait_delivered(receiver, 5, timeout=60)
        # The receiver's 200 is recorded a moment after it is sent: by this deliverer, so it
        # is stopped only once the record is there.
        wait_for(
            lambda: CallbackEvent.objects.filter(status="delivered").count() >= 5,
            10,
            "the five deliveries recorded",
        )
    finally:
        deliverer.stop()
        server.shutdown()
    seen = verified(receiver, secret)
    assert {d[0]["data"]["message_id"] for d in seen.values()} == set(ids)


def test_a_slow_receiver_for_one_tenant_does_not_delay_another(worker_process, live, capsys):
    # A's receiver holds each request 8 s (under an attempt's 10 s deadline): B's callbacks
    # must all be answered while A's first is still held. One deliverer thread for both would
    # deliver B only after A's attempt ended, at the earliest.
    slow, slow_server = start_receiver(delay=8.0)
    fast, fast_server = start_receiver()
    deliverer = CallbackDeliverer(worker_env(live.url))
    try:
        a = make_live_tenant(live, "cbslow")
        b = make_live_tenant(live, "cbfast")
        subscribe(a, slow)
        subscribe(b, fast)
        a_ids, b_ids = send_batch(a, 10, "slow"), send_batch(b, 10, "fast")
        wait_states(a_ids + b_ids, {"accepted"})
        deliver_statuses(a, a_ids)  # 10 events for A
        wait_for(lambda: slow.arrived, 30, "A's first callback in flight at its slow receiver")
        changed = time.time()
        deliver_statuses(b, b_ids)
        wait_delivered(fast, 10, timeout=60)
        a_answered = len(slow.delivered())
        b_done = max(t for t, _, _ in fast.delivered()) - changed
        slow.delay = 0  # the rest of A's go at once: the deliverer stops without waiting
    finally:
        deliverer.stop()
        slow_server.shutdown()
        fast_server.shutdown()
    with capsys.disabled():
        print(f"\n[callbacks] B's 10 delivered {b_done:.2f}s after its changes; A had {a_answered}")
    assert a_answered == 0  # A's first request was still at its receiver


def test_changes_arriving_in_chunks_each_wake_the_idle_deliverer(worker_process, live, capsys):
    receiver, server = start_receiver()
    deliverer = CallbackDeliverer(worker_env(live.url))
    try:
        tenant = make_live_tenant(live, "cblatency")
        subscribe(tenant, receiver)
        ids = send_batch(tenant, 200, "lat")
        wait_states(ids, {"accepted"})
        wait_deliverer_listening()
        for chunk in range(0, 200, 20):  # changes arriving over time, as webhooks do
            deliver_statuses(tenant, ids[chunk : chunk + 20])
            wait_delivered(receiver, chunk + 20)  # by the deliverer it woke, idle again after
    finally:
        deliverer.stop()
        server.shutdown()
    created = {f"msg_{e.pk.hex}": e.created_at.timestamp() for e in CallbackEvent.objects.all()}
    assert {h["webhook-id"] for _, h, _ in receiver.delivered()} == set(created)
    lag = sorted((t - created[h["webhook-id"]]) * 1000 for t, h, _ in receiver.delivered())
    p50, p99 = statistics.median(lag), lag[int(len(lag) * 0.99) - 1]
    with capsys.disabled():  # a figure, not asserted: bench/ measures the deployed stack's
        print(
            f"\n[callbacks] latency state change → receiver's 200, from an idle deliverer: "
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        )
