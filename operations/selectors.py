"""What the operations page shows, per tenant (reads only; the page is ``operations.admin``)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from callbacks.models import CallbackEndpoint, CallbackEvent, CallbackStatus
from callbacks.selectors import Level, endpoints_health
from callbacks.services import url_shown
from messaging.models import Message
from messaging.selectors import FREE_PRICING_TYPES, portfolio_reach
from messaging.states import ErrorClass
from operations.metrics import broker_queues, queue_depths
from operations.rollup import states_since
from tenants.limits import UNLIMITED
from tenants.models import SenderNumber, SenderStatus
from tenants.selectors import portfolios
from webhooks.models import DeliveryStatus, WebhookDelivery
from whatsapp import error_info


def top_errors(*, messages, since, limit: int = 10) -> list[dict]:
    """The most frequent errors of ``messages`` created since ``since``, each with what the
    provider's table says of its code (``whatsapp.error_info``: title, meaning, who must act)
    — or, for a code the table lacks, the title the provider sent last."""
    rows = (
        messages.filter(created_at__gte=since)
        .exclude(error_code="")
        .values("error_code", "error_class")
        .annotate(n=Count("pk"), stored_title=Max("error_title"))
        .order_by("-n", "error_code")[:limit]
    )
    errors = []
    for row in rows:
        info = error_info(row["error_code"])
        kind = row["error_class"]
        errors.append(
            {
                "code": row["error_code"],
                "error_class": kind,
                "class_label": ErrorClass(kind).label if kind in ErrorClass.values else kind,
                "title": info.title if info else row["stored_title"],
                "meaning": info.meaning if info else "",
                "who_acts": info.who_acts.label if info else "",
                "n": row["n"],
            }
        )
    return errors


def endpoints_in_trouble(*, tenant_ids) -> list[tuple]:
    """(tenant slug, URL without credentials, health) for each endpoint that is not simply
    fine — failing, disabled, stuck or waiting (``callbacks.selectors``)."""
    endpoints = list(
        CallbackEndpoint.objects.filter(tenant_id__in=tenant_ids)
        .exclude(url="")
        .select_related("tenant")
        .order_by("tenant__slug")
    )
    health = endpoints_health(endpoints=endpoints)
    return [
        (e.tenant.slug, url_shown(e.url), health[e.tenant_id])
        for e in endpoints
        if health[e.tenant_id].level != Level.OK
    ]


# Share of a portfolio's messaging limit reached from which it is shown as a warning.
LIMIT_WARN_SHARE = 0.8


def portfolios_health(*, tenants, now=None) -> list[dict]:
    """Each business portfolio of ``tenants``: its messaging limit, the unique users reached in
    the moving 24 hours (``messaging.selectors.portfolio_reach``, one query per portfolio),
    what is left, and its senders with their quality rating."""
    rows = []
    for portfolio in portfolios(tenants=tenants):
        reached = portfolio_reach(
            tenant=portfolio.tenant, business_id=portfolio.business_id, now=now
        )
        limit = portfolio.limit
        bounded = limit is not None and limit != UNLIMITED
        left = max(0, limit - reached) if bounded else None
        if not bounded:
            level = "ok" if limit == UNLIMITED else "off"
        elif reached >= limit:
            level = "bad"
        else:
            level = "warn" if reached >= LIMIT_WARN_SHARE * limit else "ok"
        rows.append(
            {
                "tenant": portfolio.tenant.slug,
                "business_id": portfolio.business_id,
                "limit": portfolio.limit_label,
                "tier": portfolio.tier,
                "source": portfolio.source,
                "learned_at": portfolio.learned_at,
                "reached": reached,
                "left": left,
                "percent": min(100, round(100 * reached / limit)) if bounded else None,
                "level": level,
                "senders": [
                    {
                        "phone_number_id": s.phone_number_id,
                        "display_phone_number": s.display_phone_number,
                        "quality_rating": s.quality_rating,
                        "status": s.status,
                        "health_checked_at": s.health_checked_at,
                    }
                    for s in portfolio.senders
                ],
            }
        )
    return rows


def operations_overview(*, tenants, now=None) -> dict:
    now = now or timezone.now()
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    ids = [t.pk for t in tenants]
    messages = Message.objects.filter(tenant_id__in=ids)
    states_hour, counted_at = states_since(tenant_ids=ids, since=hour, now=now)
    states_day, _ = states_since(tenant_ids=ids, since=day, now=now)

    oldest_pending = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).aggregate(
        at=Min("received_at")
    )["at"]
    queues = broker_queues(tenants)
    depths = queue_depths(queues)
    return {
        "states_hour": states_hour,
        "states_day": states_day,
        "states_counted_at": counted_at,  # None: counted live
        "stalled": list(
            messages.filter(stalled=True)
            .values_list("stalled_reason")
            .annotate(n=Count("pk"))
            .values_list("stalled_reason", "n")
        ),
        "stalled_total": messages.filter(stalled=True).count(),
        "top_errors": top_errors(messages=messages, since=day),
        "webhook_pending": WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count(),
        "webhook_lag_seconds": int((now - oldest_pending).total_seconds()) if oldest_pending else 0,
        "queues": [(queue, depths.get(queue)) for queue in queues],
        "blocked_senders": list(
            SenderNumber.objects.filter(tenant_id__in=ids, status=SenderStatus.BLOCKED).values_list(
                "tenant__slug", "phone_number_id", "status_reason", "status_changed_at"
            )
        ),
        "failing_endpoints": endpoints_in_trouble(tenant_ids=ids),
        "portfolios": portfolios_health(tenants=tenants, now=now),
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
