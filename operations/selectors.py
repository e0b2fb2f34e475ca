"""What the operations page shows, per tenant (reads only; the page is ``operations.admin``)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from callbacks.models import CallbackEndpoint, CallbackEvent, CallbackStatus
from callbacks.services import url_shown
from messaging.models import Message
from messaging.selectors import FREE_PRICING_TYPES
from operations.metrics import queue_depths
from tenants.models import SenderNumber, SenderStatus
from webhooks.models import DeliveryStatus, WebhookDelivery


def operations_overview(*, tenants, now=None) -> dict:
    now = now or timezone.now()
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    ids = [t.pk for t in tenants]
    messages = Message.objects.filter(tenant_id__in=ids)

    def by_state(since):
        return dict(
            messages.filter(created_at__gte=since)
            .values_list("state")
            .annotate(n=Count("pk"))
            .values_list("state", "n")
        )

    oldest_pending = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).aggregate(
        at=Min("received_at")
    )["at"]
    depths = queue_depths([t.slug for t in tenants])
    return {
        "states_hour": by_state(hour),
        "states_day": by_state(day),
        "stalled": list(
            messages.filter(stalled=True)
            .values_list("stalled_reason")
            .annotate(n=Count("pk"))
            .values_list("stalled_reason", "n")
        ),
        "stalled_total": messages.filter(stalled=True).count(),
        "top_errors": list(
            messages.filter(created_at__gte=day)
            .exclude(error_code="")
            .values_list("error_code", "error_class")
            .annotate(n=Count("pk"))
            .order_by("-n")[:10]
        ),
        "webhook_pending": WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count(),
        "webhook_lag_seconds": int((now - oldest_pending).total_seconds()) if oldest_pending else 0,
        "queues": [(f"tenant.{t.slug}", depths.get(f"tenant.{t.slug}")) for t in tenants],
        "default_queue": depths.get("waypost"),
        "blocked_senders": list(
            SenderNumber.objects.filter(tenant_id__in=ids, status=SenderStatus.BLOCKED).values_list(
                "tenant__slug", "phone_number_id", "status_reason", "status_changed_at"
            )
        ),
        "failing_endpoints": [  # URLs without the credentials they may carry
            (slug, url_shown(url), *rest)
            for slug, url, *rest in [
                *CallbackEndpoint.objects.filter(tenant_id__in=ids)
                .exclude(url="")
                .filter(failures__gt=0)
                .values_list("tenant__slug", "url", "failures", "retry_at"),
                *CallbackEndpoint.objects.filter(tenant_id__in=ids, enabled=False)
                .exclude(url="")
                .values_list("tenant__slug", "url", "disabled_reason", "disabled_at"),
            ]
        ],
        "callbacks_pending": CallbackEvent.objects.filter(
            tenant_id__in=ids, status=CallbackStatus.PENDING
        ).count(),
        "callbacks_dead": CallbackEvent.objects.filter(
            tenant_id__in=ids, status=CallbackStatus.DEAD
        ).count(),
        # What Meta's invoice will count for the last 30 days (GET /api/v1/reports/pricing).
        "pricing": list(
            messages.filter(priced_at__gte=now - timedelta(days=30))
            .values_list("pricing_category")
            .annotate(
                billable=Count("pk", filter=~Q(pricing_type__in=FREE_PRICING_TYPES)),
                free=Count("pk", filter=Q(pricing_type__in=FREE_PRICING_TYPES)),
            )
            .order_by("pricing_category")
        ),
    }
