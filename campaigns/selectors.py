"""Reads: a tenant's campaigns, one campaign's progress, its invalid rows."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, Max, Min, QuerySet
from django.utils import timezone

from campaigns.feeder import campaign_rate_limit
from campaigns.models import Campaign, CampaignRow, CampaignState, RowOutcome
from campaigns.progress import campaign_counts, campaign_rate
from core.errors import NotFound
from messaging.models import Message
from messaging.selectors import FREE_PRICING_TYPES
from tenants.models import Tenant

NOT_SENT = (RowOutcome.INVALID, RowOutcome.SKIPPED, RowOutcome.FAILED, RowOutcome.EXPIRED)


def campaign_list(*, tenant: Tenant, state: str | None = None) -> QuerySet[Campaign]:
    campaigns = Campaign.objects.filter(tenant=tenant).select_related("template", "sender")
    if state:
        campaigns = campaigns.filter(state__in=state.split(","))
    return campaigns


def campaign_get(*, tenant: Tenant, campaign_id) -> Campaign:
    campaign = (
        Campaign.objects.select_related("template", "sender", "tenant")
        .filter(tenant=tenant, pk=campaign_id)
        .first()
    )
    if campaign is None:
        raise NotFound("No such campaign.", code="campaign_not_found")
    return campaign


def campaign_progress(campaign: Campaign, now=None) -> dict:
    """Counts (``campaigns.progress``), the rate, when it should end, why it waits."""
    now = now or timezone.now()
    counts = campaign_counts(campaign)
    rate = campaign_rate(campaign, now)
    planned = campaign_rate_limit(campaign)
    eta = None
    waiting = campaign.held_reason  # held: no rate to extrapolate until it moves again
    if (
        campaign.state in (CampaignState.RUNNING, CampaignState.SCHEDULED)
        and counts["pending"]
        and not waiting
    ):
        start = max(now, campaign.send_at or now)
        eta = (start + timedelta(seconds=counts["pending"] / max(rate, planned, 0.001))).isoformat()
    # Of the rows that will be sent (not the invalid or skipped ones): how many have been.
    sendable = counts["rows"] - counts["invalid"] - counts["skipped"]
    released = sendable - counts["pending"]
    return {
        "counts": counts,
        "percent_done": round(100 * released / sendable, 1) if sendable else 100.0,
        "rate_per_second": rate,
        "planned_rate_per_second": planned,
        "estimated_completion": eta,
        "held_reason": campaign.held_reason or None,
        "held_since": campaign.held_since.isoformat() if campaign.held_since else None,
    }


def invalid_rows(campaign: Campaign) -> QuerySet[CampaignRow]:
    """Rows never sent and why (invalid at preflight, skipped, refused at release, expired)."""
    return CampaignRow.objects.filter(campaign=campaign, outcome__in=NOT_SENT).order_by("number")


def invalid_row_examples(campaign: Campaign) -> dict[str, str]:
    """For each error code of the rows not sent, the message of one of them (the preflight
    report counts codes only; the admin shows what a code means by an example)."""
    return dict(
        invalid_rows(campaign)
        .exclude(error_message="")
        .values_list("error_code")
        .annotate(message=Min("error_message"))
        .order_by()
    )


_FORMULA = re.compile(r"^(?:[=@\t\r]|[+-](?![0-9]))")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will show, not run: one that would start a formula (``=``, ``@``,
    a tab or CR, or ``+``/``-`` not followed by a digit — ``+4915…`` stays a number) gets a
    leading ``'`` (OWASP's advice on CSV injection). What a user typed reaches the download."""
    return f"'{value}" if value and _FORMULA.match(value) else value


def invalid_rows_csv(campaign: Campaign, *, mask=None) -> Iterator[str]:
    """The invalid rows as CSV lines (row, recipient, outcome, code, message), streamed a
    thousand at a time; ``mask`` hides numbers (the admin, for users without the permission)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "recipient", "outcome", "error_code", "error_message"])
    rows = invalid_rows(campaign).values_list(
        "number",
        "recipient",
        "recipient_user_id",
        "raw_recipient",
        "outcome",
        "error_code",
        "error_message",
    )
    for number, recipient, user_id, raw, outcome, code, message in rows.iterator(chunk_size=1000):
        shown = recipient or user_id or raw
        if mask is not None:  # a raw value may be a number that failed to parse: masked too
            shown = mask(shown)
        writer.writerow([number, spreadsheet_safe(shown), outcome, code, spreadsheet_safe(message)])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def campaign_report(campaign: Campaign, counts: dict | None = None) -> dict:
    """The final report's figures (the admin's; ``counts`` from ``campaign_counts`` when the
    caller has them). Rates are of what Meta sent — the messages now ``sent``, ``delivered``
    or ``read`` — so a campaign's invalid, skipped or failed rows do not lower them; None
    before anything was sent. ``failures``: each error code with its count, most frequent
    first, and the title Waypost stored with one of them (for a code no error table
    explains). ``pricing``: its messages by pricing category and type as Meta priced them
    (billable unless the type is a free one), and ``unpriced``: those no status priced yet."""
    counts = counts if counts is not None else campaign_counts(campaign)
    sent = counts["sent"] + counts["delivered"] + counts["read"]
    delivered = counts["delivered"] + counts["read"]
    codes = list(counts["failed_by_code"])
    titles = dict(
        Message.objects.filter(campaign=campaign, error_code__in=codes)
        .exclude(error_title="")
        .values_list("error_code")
        .annotate(title=Max("error_title"))
        .order_by()
    )
    for code, message in (
        CampaignRow.objects.filter(
            campaign=campaign, outcome=RowOutcome.FAILED, error_code__in=codes
        )
        .exclude(error_message="")
        .values_list("error_code")
        .annotate(message=Max("error_message"))
        .order_by()
    ):
        titles.setdefault(code, message)
    priced = (
        Message.objects.filter(campaign=campaign)
        .values_list("pricing_category", "pricing_type")
        .annotate(n=Count("id"))
        .order_by("pricing_category", "pricing_type")
    )
    pricing, unpriced = [], 0
    for category, pricing_type, n in priced:
        if not category and not pricing_type:
            unpriced += n
            continue
        pricing.append(
            {
                "category": category,
                "type": pricing_type,
                "billable": pricing_type not in FREE_PRICING_TYPES,
                "messages": n,
            }
        )
    return {
        "sent": sent,
        "delivered": delivered,
        "read": counts["read"],
        "delivered_rate": round(100 * delivered / sent, 1) if sent else None,
        "read_rate": round(100 * counts["read"] / sent, 1) if sent else None,
        "failures": [
            {"code": code, "count": n, "title": titles.get(code, "")}
            for code, n in sorted(counts["failed_by_code"].items(), key=lambda item: -item[1])
        ],
        "pricing": pricing,
        "unpriced": unpriced,
    }
