"""``GET /metrics`` for Prometheus: the counters every process records (``core.metrics``), and
gauges read at scrape time from the database and Redis (stalled and due messages per tenant,
the depth of every queue workers consume, pending webhook deliveries and callbacks, blocked
senders).

Protected: with ``WAYPOST_METRICS_TOKEN`` set, a request must carry ``Authorization: Bearer
<token>`` (compared in constant time); without it, only addresses in ``WAYPOST_METRICS_ALLOW``
(default: loopback) may scrape.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from callbacks.models import CallbackEvent, CallbackStatus
from core.coordination import REDIS_SCHEMES, redis_client
from core.queues import shared_queues
from messaging.models import Message
from tenants.models import SenderNumber, SenderStatus, Tenant
from webhooks.models import DeliveryStatus, WebhookDelivery


class StateCollector:
    """Gauges computed from the database and the broker when Prometheus scrapes."""

    def collect(self):
        slugs = dict(Tenant.objects.values_list("pk", "slug"))
        stalled = GaugeMetricFamily(
            "waypost_stalled_messages", "Messages flagged stalled now.", labels=["tenant"]
        )
        waiting = GaugeMetricFamily(
            "waypost_waiting_messages",
            "Messages queued or waiting for a retry now.",
            labels=["tenant"],
        )
        for tenant_id, n in _counts(Message.objects.filter(stalled=True)):
            stalled.add_metric([slugs.get(tenant_id, "?")], n)
        for tenant_id, n in _counts(
            Message.objects.filter(state__in=["queued", "retry_scheduled"])
        ):
            waiting.add_metric([slugs.get(tenant_id, "?")], n)
        callbacks = GaugeMetricFamily(
            "waypost_callbacks_pending", "Callbacks not delivered yet.", labels=["tenant"]
        )
        for tenant_id, n in _counts(CallbackEvent.objects.filter(status=CallbackStatus.PENDING)):
            callbacks.add_metric([slugs.get(tenant_id, "?")], n)
        depth = GaugeMetricFamily(
            "waypost_queue_depth", "Tasks waiting in a broker queue.", labels=["queue"]
        )
        own = Tenant.objects.filter(dedicated_queue=True).only("pk", "slug", "dedicated_queue")
        for queue, n in queue_depths(broker_queues(own)).items():
            depth.add_metric([queue], n)
        yield from (stalled, waiting, callbacks, depth)
        yield GaugeMetricFamily(
            "waypost_webhook_deliveries_pending",
            "Stored webhook deliveries not processed yet.",
            value=WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count(),
        )
        yield GaugeMetricFamily(
            "waypost_senders_blocked",
            "Sender numbers stopped by a provider alert.",
            value=SenderNumber.objects.filter(status=SenderStatus.BLOCKED).count(),
        )


def _counts(queryset):
    return queryset.values_list("tenant_id").annotate(n=Count("pk")).values_list("tenant_id", "n")


def broker_queues(tenants) -> list[str]:
    """The queues workers consume: the default one, the shared lanes and the own queues of
    ``tenants`` that have one (``core.queues``) — not one per tenant."""
    return [
        settings.CELERY_TASK_DEFAULT_QUEUE,
        *shared_queues(settings.WAYPOST_SEND_QUEUES, settings.WAYPOST_BULK_QUEUES),
        *(t.queue_name for t in tenants if t.dedicated_queue),
    ]


def queue_depths(queues: list[str]) -> dict[str, int]:
    """LLEN of each of ``queues`` ({} without a Redis broker)."""
    if not settings.CELERY_BROKER_URL.startswith(REDIS_SCHEMES):
        return {}
    import redis

    client = redis_client(settings.CELERY_BROKER_URL)
    try:
        pipe = client.pipeline()
        for queue in queues:
            pipe.llen(queue)
        return dict(zip(queues, pipe.execute(), strict=True))
    except redis.RedisError:
        return {}


def _allowed(request) -> bool:
    token = settings.WAYPOST_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n) for n in settings.WAYPOST_METRICS_ALLOW)


def metrics_view(request) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("Forbidden", status=403, content_type="text/plain")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counters = CollectorRegistry()
        MultiProcessCollector(counters)
    else:
        counters = REGISTRY
    state = CollectorRegistry()
    state.register(StateCollector())
    body = generate_latest(counters) + generate_latest(state)
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
