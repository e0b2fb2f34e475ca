"""Several callback deliverers share the work by leases: one delivers a tenant at a time (its
events go out in order), none delivers an event twice while its lease holds, and when one dies
the others take over its tenants once its leases end."""

import threading
from collections import defaultdict

import pytest
from django.utils import timezone

from callbacks.models import CallbackEndpoint, CallbackEvent
from callbacks.services import Item, callbacks_enqueue, deliver_tenant, tenants_due
from callbacks.transport import Transport
from devtools.servers import start_receiver
from devtools.worker import CallbackDeliverer, worker_env

from ..messaging.conftest import make_live_tenant
from ..waiting import wait_for
from .test_delivery import subscribe

pytestmark = pytest.mark.redis


def enqueue(tenant, count: int, start: int = 0) -> None:
    callbacks_enqueue(
        tenant_id=tenant.tenant.pk,
        items=[
            Item(type="message.delivered", message_id=None, sequence=n, data={"n": n})
            for n in range(start, start + count)
        ],
    )


def arrivals(receiver) -> dict[str, list[float]]:
    """webhook-id → the times the receiver answered it 2xx."""
    found = defaultdict(list)
    for at, headers, _body in receiver.delivered():
        found[headers["webhook-id"]].append(at)
    return found


def test_a_tenant_being_delivered_is_no_other_deliverers_until_its_lease_ends(live, settings):
    receiver, server = start_receiver(delay=0.3)
    try:
        tenant = make_live_tenant(live, "leased")
        subscribe(tenant, receiver)
        enqueue(tenant, 3)
        first = threading.Thread(
            target=deliver_tenant,
            kwargs={"tenant_id": tenant.tenant.pk, "transport": Transport(), "holder": "a:1"},
        )
        first.start()
        wait_for(lambda: receiver.arrived, 10, "deliverer a's first attempt")
        endpoint = CallbackEndpoint.objects.get(tenant=tenant.tenant)
        assert endpoint.leased_by == "a:1" and endpoint.leased_until > timezone.now()
        enqueue(tenant, 2, start=3)  # due now, but the tenant is a's
        assert tenant.tenant.pk not in tenants_due()
        other = deliver_tenant(tenant_id=tenant.tenant.pk, transport=Transport(), holder="b:2")
        assert other == {"delivered": 0, "retry": 0, "dead": 0}
        first.join(30)
        assert CallbackEndpoint.objects.get(pk=endpoint.pk).leased_until is None  # given back
        assert tenant.tenant.pk in tenants_due()  # the two that arrived meanwhile: anyone's
        assert (
            deliver_tenant(tenant_id=tenant.tenant.pk, transport=Transport(), holder="b:2")[
                "delivered"
            ]
            == 2
        )
    finally:
        server.shutdown()


def test_two_deliverers_share_the_tenants_in_order_and_survive_one_killed(live, settings):
    lease = 3
    receiver, server = start_receiver(delay=0.02)
    env = worker_env(live.url, WAYPOST_CALLBACK_LEASE=str(lease))
    deliverers = [CallbackDeliverer(env), CallbackDeliverer(env)]
    try:
        tenants = [make_live_tenant(live, f"share{i}") for i in range(4)]
        for tenant in tenants:
            subscribe(tenant, receiver)
            enqueue(tenant, 40)
        total = 40 * len(tenants)
        wait_for(lambda: len(arrivals(receiver)) >= total // 4, 60, "a quarter delivered")
        deliverers[0].kill()  # a whole deliverer host gone, mid-delivery
        wait_for(lambda: len(arrivals(receiver)) >= total, 90, "every event delivered")
        wait_for(
            lambda: not CallbackEvent.objects.exclude(status="delivered").exists(),
            30,
            "every delivery recorded",
        )
        seen = arrivals(receiver)
        twice = {key: times for key, times in seen.items() if len(times) > 1}
        # Only what the killed deliverer had in flight (at most one event per tenant it was
        # delivering) goes out again, and only after its lease ended.
        assert len(twice) <= len(tenants), twice
        for times in twice.values():
            assert times[1] - times[0] >= lease - 0.5, times
        by_tenant = defaultdict(list)
        for event in CallbackEvent.objects.order_by("created_at"):
            by_tenant[event.tenant_id].append(event.webhook_id)
        first_arrival = {key: times[0] for key, times in seen.items()}
        for ids in by_tenant.values():  # each tenant's events reached the receiver in order
            assert sorted(ids, key=first_arrival.__getitem__) == ids
    finally:
        for deliverer in deliverers:
            deliverer.stop()
        server.shutdown()
