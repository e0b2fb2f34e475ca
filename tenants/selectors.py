"""Reads of tenants and their senders."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from tenants.limits import limit_label
from tenants.models import (
    HealthKind,
    PortfolioLimit,
    SenderHealthEvent,
    SenderNumber,
    SenderStatus,
    Tenant,
)


def sender_default(*, tenant: Tenant) -> SenderNumber | None:
    """The tenant's default sender: the oldest active one, else the oldest.

    The one rule for "which number": a template is submitted through it, and a message leaves
    from its template's number (``messaging``) or, with none, from this one."""
    senders = SenderNumber.objects.filter(tenant=tenant).order_by("created_at", "pk")
    return senders.filter(status=SenderStatus.ACTIVE).first() or senders.first()


# --- business portfolios and their messaging limit -----------------------------------------------


def portfolio_of(sender: SenderNumber) -> str:
    """The business portfolio ``sender`` belongs to: its ``business_id``, or "" — the tenant's
    one portfolio, shared by every sender of the tenant without an id. Meta's messaging limit
    is the portfolio's, shared by all its numbers."""
    return sender.business_id


def portfolio_senders(*, tenant: Tenant, business_id: str) -> QuerySet[SenderNumber]:
    """The tenant's senders in the portfolio (whatever their status: a blocked sender's
    recent sends still count towards the limit)."""
    return SenderNumber.objects.filter(tenant=tenant, business_id=business_id)


def portfolio_limit(*, tenant: Tenant, business_id: str) -> int | None:
    """The portfolio's messaging limit — unique users per moving 24 hours — as last learned:
    None when unknown (never told, or ``TIER_NOT_SET``), ``tenants.limits.UNLIMITED`` (-1)
    when unlimited."""
    return (
        PortfolioLimit.objects.filter(tenant=tenant, business_id=business_id)
        .values_list("limit", flat=True)
        .first()
    )


@dataclass(frozen=True)
class Portfolio:
    """One of a tenant's business portfolios, for people (the operations page)."""

    tenant: Tenant
    business_id: str
    limit: int | None
    tier: str
    source: str
    learned_at: datetime | None
    senders: list[SenderNumber]

    @property
    def limit_label(self) -> str:
        return limit_label(self.limit)


def portfolios(*, tenants: Iterable[Tenant]) -> list[Portfolio]:
    """Every portfolio of ``tenants`` that has a sender or a known limit, with its limit and
    senders (two queries)."""
    by_id = {t.pk: t for t in tenants}
    senders: dict[tuple, list[SenderNumber]] = {}
    for sender in SenderNumber.objects.filter(tenant_id__in=by_id).order_by("phone_number_id"):
        senders.setdefault((sender.tenant_id, sender.business_id), []).append(sender)
    limits = {
        (row.tenant_id, row.business_id): row
        for row in PortfolioLimit.objects.filter(tenant_id__in=by_id)
    }
    result = []
    for key in sorted(set(senders) | set(limits), key=lambda k: (by_id[k[0]].slug, k[1])):
        row = limits.get(key)
        result.append(
            Portfolio(
                tenant=by_id[key[0]],
                business_id=key[1],
                limit=row.limit if row else None,
                tier=row.tier if row else "",
                source=row.source if row else "",
                learned_at=row.learned_at if row else None,
                senders=senders.get(key, []),
            )
        )
    return result


def sender_spam_limited_since(*, sender: SenderNumber, since: datetime) -> bool:
    """Has Meta refused one of ``sender``'s messages for its spam rate limit (131048) at or
    after ``since``? (``tenants.services.sender_spam_limited`` records each.)"""
    return SenderHealthEvent.objects.filter(
        sender=sender, kind=HealthKind.SPAM_RATE_LIMIT, occurred_at__gte=since
    ).exists()


def sender_health_history(*, sender: SenderNumber, limit: int = 50) -> QuerySet[SenderHealthEvent]:
    """The sender's health events, newest first: its own, and its portfolio's limit changes."""
    return SenderHealthEvent.objects.filter(
        Q(sender=sender)
        | Q(tenant_id=sender.tenant_id, business_id=sender.business_id, kind=HealthKind.LIMIT)
    ).order_by("-occurred_at", "-id")[:limit]
