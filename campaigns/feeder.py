"""The feeder: one pass over one campaign — rows become messages at the campaign's pace, inside
its send window and within the business portfolio's messaging limit (the rules are in
``campaigns/__init__``, "The feeder").

A pass runs as the ``campaigns.feed`` task on the tenant's bulk queue (``core.queues``), rung
through a doorbell (``core.coordination.Doorbell``) keyed by the campaign: at most one pass per
campaign is pending, each schedules the next (:func:`schedule`), and :func:`overdue` — on the
beat — rings any campaign whose next pass is late (a lost ring, a worker killed mid-pass). Every
pass holds the campaign's row lock from start to end, so two passes of one campaign never
overlap (and a pass never overlaps a pause or a cancel), and each row's message has the
idempotency key ``campaign:<id>:<row>``: a pass repeated after a crash creates nothing twice.

The campaign's lock is ``FOR NO KEY UPDATE``, never ``FOR UPDATE``: other transactions insert
and update messages that reference the campaign, and PostgreSQL's foreign-key check takes
``KEY SHARE`` on it at their commit (also for a row they updated twice); ``FOR UPDATE`` would
block them while a pause waits for the very messages they hold — a deadlock
``tests/campaigns/test_live.py`` met.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.audience import campaign_window
from campaigns.lifecycle import deadline, transition
from campaigns.models import Campaign, CampaignRow, CampaignState, HeldReason, RowOutcome
from campaigns.variables import ColumnError, components_from_variables
from core.coordination import Doorbell
from core.db import bulk_update
from messaging.models import Message
from messaging.selectors import portfolio_reach_oldest, portfolio_usage
from messaging.send import dispatch
from messaging.send.intake import message_create_batch
from messaging.send.requeue import campaign_batches_recall, campaign_messages_park
from messaging.send.windows import zones_from_key
from messaging.states import NOT_SUBMITTED, MessageState
from templates_registry.models import TemplateStatus
from templates_registry.rules.limits import TemplateCategory
from tenants.models import PortfolioLimit, SenderStatus
from tenants.selectors import (
    portfolio_limit,
    portfolio_of,
    sender_spam_limited_since,
)

log = logging.getLogger(__name__)

FEED_TASK = "campaigns.feed"
PASS_SECONDS = 1.0  # a running campaign's passes: its rate is released once a second
WAITING_SECONDS = 2.0  # everything released: how often to look for the end
LIMIT_RECHECK_SECONDS = 60.0  # held at the limit: look again at least this often
SENDER_RECHECK_SECONDS = 5.0  # the sender is blocked or disabled
TEMPLATE_RECHECK_SECONDS = 60.0  # the template is paused or in review
OVERDUE_AFTER = timedelta(seconds=30)  # a pass this late is rung by the beat's safety net
RELEASE_MAX = 1000  # rows per intake call

_feeds = Doorbell("campaign", task=FEED_TASK, before_publish=dispatch.announce_queue)


# --- scheduling ----------------------------------------------------------------------------------


def schedule(campaign: Campaign, *, at: datetime) -> None:
    """The campaign's next pass at ``at`` (inside the caller's transaction; rung after it
    commits)."""
    campaign.next_pass_at = at
    Campaign.objects.filter(pk=campaign.pk).update(next_pass_at=at)
    key, queue = str(campaign.pk), campaign.tenant.bulk_queue_name
    delay = max(0.0, (at - timezone.now()).total_seconds())
    transaction.on_commit(lambda: _feeds.ring(key, queue=queue, args=(key,), delay=delay))


def ring(campaigns: list[Campaign]) -> None:
    """A pass for each of ``campaigns`` now (something they wait for changed)."""
    for campaign in campaigns:
        key = str(campaign.pk)
        _feeds.ring(key, queue=campaign.tenant.bulk_queue_name, args=(key,))


def overdue(*, now=None) -> int:
    """The safety net: ring every scheduled or running campaign whose next pass is more than
    ``OVERDUE_AFTER`` late. Returns how many (zero while the normal path works)."""
    now = now or timezone.now()
    late = Campaign.objects.filter(
        state__in=[CampaignState.SCHEDULED, CampaignState.RUNNING],
        next_pass_at__lt=now - OVERDUE_AFTER,
    ).select_related("tenant")
    count = 0
    for campaign in late:
        key = str(campaign.pk)
        _feeds.answered(key)  # a ring that was lost still looks pending: clear it
        _feeds.ring(key, queue=campaign.tenant.bulk_queue_name, args=(key,))
        count += 1
    if count:
        log.warning("campaign passes overdue, rung again: %d", count)
    return count


# --- one pass ------------------------------------------------------------------------------------


@dataclass
class Pass:
    state: str = ""
    released: int = 0
    failed: int = 0
    expired: int = 0
    held: str = ""
    next_in: float | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", 0)}


def feed(*, campaign_id) -> Pass:
    """One pass (see the module docstring)."""
    _feeds.answered(str(campaign_id))
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",), no_key=True)
            .select_related("tenant", "sender", "template")
            .filter(pk=campaign_id)
            .first()
        )
        if campaign is None:
            return Pass()
        result = Pass(state=campaign.state)
        now = timezone.now()
        if campaign.state == CampaignState.SCHEDULED:
            if campaign.send_at is not None and campaign.send_at > now:
                schedule(campaign, at=campaign.send_at)  # rung early: wait for send_at
                result.next_in = (campaign.send_at - now).total_seconds()
                return result
            transition(campaign, CampaignState.RUNNING, by="waypost", reason="send_at reached")
        if campaign.state != CampaignState.RUNNING:
            return result
        next_at = _pass(campaign, now, result)
        if next_at is not None:
            schedule(campaign, at=next_at)
            result.next_in = round((next_at - now).total_seconds(), 3)
        result.state = campaign.state
    return result


def _pass(campaign: Campaign, now: datetime, result: Pass) -> datetime | None:
    """The running campaign's pass; when the next one is due (None: it ended or paused)."""
    sender = campaign.sender
    if campaign.template.category == TemplateCategory.MARKETING and sender_spam_limited_since(
        sender=sender, since=campaign.state_changed_at
    ):
        _pause_for_spam_limit(campaign)
        return None
    ends = deadline(campaign)
    if ends is not None and now >= ends:
        result.expired = CampaignRow.objects.filter(
            campaign=campaign, outcome=RowOutcome.PENDING
        ).update(
            outcome=RowOutcome.EXPIRED,
            error_code="expired",
            error_message="Not sent within the campaign's ttl_seconds.",
        )
    pending = CampaignRow.objects.filter(campaign=campaign, outcome=RowOutcome.PENDING)
    if not pending.exists():
        return _finish_or_wait(campaign, now)
    if sender.status != SenderStatus.ACTIVE:
        _hold(campaign, HeldReason.SENDER_INACTIVE, now)
        result.held = HeldReason.SENDER_INACTIVE
        return now + timedelta(seconds=SENDER_RECHECK_SECONDS)
    # The template as it is now: Meta may have paused it (quality) or it may be gone. Each row
    # would be refused on its own; the campaign waits, or stops, as a whole instead.
    status = campaign.template.status
    if status in TemplateStatus.WAITING:
        _hold(campaign, HeldReason.TEMPLATE_WAITING, now)
        result.held = HeldReason.TEMPLATE_WAITING
        return now + timedelta(seconds=TEMPLATE_RECHECK_SECONDS)
    if status not in TemplateStatus.SENDABLE:
        transition(
            campaign,
            CampaignState.PAUSED,
            by="waypost",
            reason=f"The template is {status}: it cannot be sent; cancel, or resume once "
            "it is approved again",
        )
        return None
    rate = campaign_rate_limit(campaign)
    queued = Message.objects.filter(campaign=campaign, state__in=NOT_SUBMITTED, attempts=0).count()
    budget = min(
        math.ceil(rate * PASS_SECONDS),
        math.ceil(rate * settings.WAYPOST_CAMPAIGN_LEAD_SECONDS) - queued,
    )
    left, waiting = _limit_left(campaign, now)
    if left is not None and left <= 0:
        _hold(campaign, HeldReason.MESSAGING_LIMIT, now)
        result.held = HeldReason.MESSAGING_LIMIT
        return _limit_recheck(campaign, now, waiting=waiting)
    if left is not None:
        budget = min(budget, left)
    if budget <= 0:
        return now + timedelta(seconds=PASS_SECONDS)
    window = campaign_window(campaign)
    zones = list(pending.values_list("time_zones", flat=True).distinct().order_by())
    open_zones = [
        key for key in zones if window is None or window.is_open(now, zones_from_key(key))
    ]
    if not open_zones:
        _hold(campaign, HeldReason.OUTSIDE_WINDOW, now)
        result.held = HeldReason.OUTSIDE_WINDOW
        openings = [window.next_open(now, zones_from_key(key)) for key in zones]
        soonest = min((at for at in openings if at is not None), default=None)
        return soonest or now + timedelta(hours=1)
    rows = list(pending.filter(time_zones__in=open_zones).order_by("number")[:budget])
    released, failed = _release(campaign, rows, ends)
    result.released, result.failed = released, failed
    campaign.rows_released += released
    campaign.held_reason, campaign.held_since = "", None
    campaign.save(update_fields=["rows_released", "held_reason", "held_since"])
    return now + timedelta(seconds=PASS_SECONDS)


def campaign_rate_limit(campaign: Campaign) -> float:
    """Messages per second the campaign may release: its own rate, capped at
    ``WAYPOST_CAMPAIGN_SHARE`` of its sender's (at least one a second)."""
    share = max(1.0, campaign.sender.messages_per_second * settings.WAYPOST_CAMPAIGN_SHARE)
    own = campaign.messages_per_second
    return float(min(own, share)) if own else share


def _limit_left(campaign: Campaign, now: datetime) -> tuple[int | None, int]:
    """(unique users the portfolio may still reach now — None: no limit known, or unlimited —,
    its messages waiting). What is left:
    the limit, less those reached in the moving 24 hours, less the portfolio's template
    messages waiting to be sent within the day, first time or again (each may be a new user)
    — both counted in one snapshot (``messaging.selectors.portfolio_usage``)."""
    business_id = portfolio_of(campaign.sender)
    limit = portfolio_limit(tenant=campaign.tenant, business_id=business_id)
    if limit is None or limit < 0:
        return None, 0
    # One pass at a time per portfolio from here to its commit: two campaigns of one
    # portfolio would otherwise both read the same room and both release it. (Locks are taken
    # campaign first, then portfolio; whoever learns a limit takes the portfolio's alone.)
    list(
        PortfolioLimit.objects.select_for_update()
        .filter(tenant=campaign.tenant, business_id=business_id)
        .values_list("pk", flat=True)
    )
    reached, waiting = portfolio_usage(tenant=campaign.tenant, business_id=business_id, now=now)
    return limit - reached - waiting, waiting


def _limit_recheck(campaign: Campaign, now: datetime, *, waiting: int) -> datetime:
    """When a campaign held at the limit looks again: when the oldest reach leaves the 24-hour
    window, at the latest a minute on — sooner (``WAITING_SECONDS``) while messages of the
    portfolio are waiting to be sent, each counted as a possible new user until it has been."""
    business_id = portfolio_of(campaign.sender)
    oldest = portfolio_reach_oldest(tenant=campaign.tenant, business_id=business_id, now=now)
    soonest = now + timedelta(seconds=WAITING_SECONDS if waiting else LIMIT_RECHECK_SECONDS)
    if oldest is not None:
        soonest = min(soonest, max(oldest, now + timedelta(seconds=PASS_SECONDS)))
    return soonest


def _hold(campaign: Campaign, reason: str, now: datetime) -> None:
    if campaign.held_reason != reason:
        campaign.held_reason, campaign.held_since = reason, now
        campaign.save(update_fields=["held_reason", "held_since"])


def _pause_for_spam_limit(campaign: Campaign) -> None:
    transition(
        campaign,
        CampaignState.PAUSED,
        by="waypost",
        reason="Meta's spam rate limit (131048) on the sender: check its quality before resuming",
    )
    campaign_messages_park(campaign_id=campaign.pk)
    campaign_batches_recall(campaign_id=campaign.pk, reason="its campaign was paused")


def _finish_or_wait(campaign: Campaign, now: datetime) -> datetime | None:
    """Every row is out: completed once none of its messages waits to be submitted."""
    waiting = Message.objects.filter(
        campaign=campaign, state__in=[*NOT_SUBMITTED, MessageState.SUBMITTING]
    ).exists()
    if waiting:
        return now + timedelta(seconds=WAITING_SECONDS)
    transition(campaign, CampaignState.COMPLETED, by="waypost", reason="every row sent or settled")
    return None


def _release(campaign: Campaign, rows: list[CampaignRow], ends) -> tuple[int, int]:
    """The rows as messages, through the API's own intake; each row records its message or
    why it was refused. Returns (released, failed)."""
    template = campaign.template
    window = campaign_window(campaign)
    items, sendable = [], []
    for row in rows:
        try:
            components = components_from_variables(
                template_components=template.components,
                parameter_format=template.parameter_format,
                category=template.category,
                variables=row.variables,
            )
        except ColumnError as exc:
            _row_failed(row, exc.code, str(exc))
            continue
        item = {
            "idempotency_key": f"campaign:{campaign.pk}:{row.number}",
            "template": {
                "name": template.name,
                "language": template.language,
                "components": components,
            },
            "metadata": row.metadata,
        }
        if window is not None:  # kept on the message: a retry waits for the window too
            item["send_window"] = window.as_dict()
        if row.recipient:
            item["to"] = row.recipient
        else:
            item["recipient"] = row.recipient_user_id
        items.append(item)
        sendable.append(row)
    released = 0
    for start in range(0, len(items), RELEASE_MAX):
        results = message_create_batch(
            tenant=campaign.tenant,
            items=items[start : start + RELEASE_MAX],
            campaign_id=campaign.pk,
            sender=campaign.sender,
            expires_at=ends,
        )
        for row, result in zip(sendable[start : start + RELEASE_MAX], results, strict=True):
            if result.message is not None:
                row.outcome, row.message_id = RowOutcome.RELEASED, result.message.pk
                released += 1
            else:
                error = result.error or {}
                _row_failed(row, error.get("code", "refused"), error.get("message", ""))
    bulk_update(rows, ["outcome", "message_id", "error_code", "error_message"])
    return released, len(rows) - released


def _row_failed(row: CampaignRow, code: str, message: str) -> None:
    row.outcome, row.error_code, row.error_message = RowOutcome.FAILED, code, message[:500]
