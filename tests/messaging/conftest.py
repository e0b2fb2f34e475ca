"""Integration fixtures: a real Celery worker process on the test database and Redis, the
sandbox as the provider, tenants whose senders point at it."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from devtools.worker import Worker, worker_env
from messaging.models import Message
from messaging.send import dispatch
from templates_registry.services import template_create
from tenants.models import Tenant
from tenants.services import api_key_create, tenant_create
from whatsapp import get_provider

from ..waiting import wait_for  # (the messaging tests import it from here too)

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def worker_process(django_db_setup, django_db_blocker, sandbox_process):
    with django_db_blocker.unblock():
        worker = Worker(worker_env(sandbox_process.url))
    yield worker
    worker.stop()


def stop_shared_worker(worker_process) -> None:
    """For a test that runs workers of its own: the session's worker stopped, and this test
    process's broker emptied. What that worker held goes back to the broker as it stops — a
    campaign test's feed pass, due a minute ahead, which kombu redelivers every visibility
    timeout (4 s here) — and a crash test's worker that got it instead of its drain never
    reached its crash point."""
    from core.coordination import redis_client

    worker_process.stop()
    redis_client().flushdb()


def broker_state() -> str:
    """What this test process's broker holds, for a failure's message: each list's length
    (the queues; ``ae.undeliver``: what kombu routed nowhere), the queue bindings, the doorbell
    keys, and this process's outage flags."""
    from core import coordination

    client = coordination.redis_client()
    lists = {
        k.decode(): client.llen(k)
        for k in client.scan_iter(count=1000)
        if client.type(k) == b"list"
    }
    bindings = sorted(
        m.decode(errors="replace").split("\x16")[-1]
        for m in client.smembers("_kombu.binding.waypost")
    )
    bells = sorted(k.decode() for k in client.scan_iter("*drain*", count=1000))
    outages = {
        "broker": coordination.broker_outage.ongoing,
        "store": coordination.store_outage.ongoing,
    }
    return f"lists {lists}; bound {bindings}; doorbell keys {bells}; outages {outages}"


@pytest.fixture
def live(transactional_db, sandbox, settings):
    """Point this process's providers at the sandbox; forget announced queues."""
    settings.SANDBOX_URL = sandbox.url
    get_provider.cache_clear()
    dispatch._announced.clear()
    yield sandbox
    get_provider.cache_clear()


@dataclass
class LiveTenant:
    tenant: object
    sender: object
    template: object
    client: APIClient


ORDER_UPDATE = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."}],
}


def make_live_tenant(sandbox, slug: str, *, mps: int = 1000) -> LiveTenant:
    n = next(_numbers)
    bundle = tenant_create(
        slug=slug,
        name=slug.title(),
        phone_number_id=f"77{n:08d}",
        waba_id=f"88{n:08d}",
        messages_per_second=mps,
    )
    # Load generators: the API throttle (a batch costs one token per message) is tested in
    # tests/tenants/; here it would measure the throttle, not the pipeline.
    Tenant.objects.filter(pk=bundle.tenant.pk).update(api_requests_per_second=0)
    sandbox.post(
        "/_sandbox/numbers",
        {
            "phone_number_id": bundle.sender.phone_number_id,
            "waba_id": bundle.sender.waba_id,
            "mps": 0,
        },
    )
    template = template_create(tenant=bundle.tenant, definition=ORDER_UPDATE)
    assert template.status == "APPROVED", template.submission_error
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(tenant=bundle.tenant).raw}")
    return LiveTenant(bundle.tenant, bundle.sender, template, client)


@pytest.fixture
def acme(live):
    return make_live_tenant(live, f"acme-{next(_numbers)}")


def message_body(to="+4915112345678", name="Ana", order="A-1"):
    return {
        "to": to,
        "template": {
            "name": "order_update",
            "language": "en_US",
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": name}, {"type": "text", "text": order}],
                }
            ],
        },
    }


def send(tenant: LiveTenant, key: str, **kw) -> dict:
    response = tenant.client.post(
        "/api/v1/messages", message_body(**kw), format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 202, response.content
    return response.json()


def send_batch(tenant: LiveTenant, count: int, prefix: str) -> list[str]:
    ids = []
    for start in range(0, count, 1000):
        items = [
            {
                "idempotency_key": f"{prefix}-{i}",
                **message_body(to=f"+49151{i:08d}", order=f"{prefix}-{i}"),
            }
            for i in range(start, min(count, start + 1000))
        ]
        response = tenant.client.post("/api/v1/messages/batch", {"messages": items}, format="json")
        data = response.json()
        assert data["rejected"] == 0, data["results"][:3]
        ids += [r["message"]["id"] for r in data["results"]]
    return ids


def wait_states(ids, states, timeout: float = 60.0) -> dict[str, str]:
    """Wait until every message is in one of ``states``; return {id: state}."""
    states = set(states)
    current: dict[str, str] = {}

    def settled() -> bool:
        current.clear()
        current.update(
            (str(pk), s) for pk, s in Message.objects.filter(pk__in=ids).values_list("pk", "state")
        )
        return len(current) == len(ids) and set(current.values()) <= states

    try:
        wait_for(settled, timeout, f"{len(ids)} message(s) in {sorted(states)}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; states now {Counter(current.values())}") from None
    return current


@pytest.fixture
def shop(worker_process, live, live_server, settings):
    """A tenant on the real stack whose sandbox posts its signed webhooks to the live server
    (statuses fast, no read receipts)."""
    live.configure(
        webhook_url=f"{live_server.url}/webhooks/whatsapp",
        app_secret=settings.WHATSAPP_APP_SECRET,
        sent_after_ms=20,
        delivered_after_ms=60,
        read_rate=0.0,
    )
    return make_live_tenant(live, f"shop-{next(_numbers)}")


PROMO = {
    "name": "spring_promo",
    "language": "en_US",
    "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Hi {{1}}, spring sale until {{2}}."}],
}


def promo_body(to: str) -> dict:
    """A message of the PROMO template (a MARKETING one)."""
    parameters = [{"type": "text", "text": "Ana"}, {"type": "text", "text": "Sunday"}]
    return {
        "to": to,
        "template": {
            "name": "spring_promo",
            "language": "en_US",
            "components": [{"type": "body", "parameters": parameters}],
        },
    }
