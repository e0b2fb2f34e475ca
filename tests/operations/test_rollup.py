"""The operations page's counts by state as a rollup (``operations.rollup``): per tenant and
five-minute bucket, counted again whole when a message of the bucket changes state — equal to a
live count, whatever changed, however often it runs; a stale rollup falls back to counting live."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message
from operations.models import RollupMark, StateCount
from operations.rollup import STALE, rollup_refresh, states_since

from ..factories import SenderNumberFactory

pytestmark = pytest.mark.django_db

STATES = ["queued", "accepted", "accepted", "delivered", "read", "failed"]


def messages(sender, states, *, age: timedelta) -> list[Message]:
    made = []
    for i, state in enumerate(states):
        at = timezone.now() - age
        made.append(
            Message.objects.create(
                tenant=sender.tenant,
                sender=sender,
                recipient=f"+4915100000{len(made):03d}{i}",
                template_name="order_update",
                template_category="UTILITY",
                idempotency_key=f"{state}-{age}-{i}",
                request_hash="-",
                state=state,
                state_changed_at=at,
                error_code="",
            )
        )
        Message.objects.filter(pk=made[-1].pk).update(created_at=at)
    return made


def live(tenant, since) -> dict:
    rows = Message.objects.filter(tenant=tenant, created_at__gte=since)
    return dict(Counter(rows.values_list("state", flat=True)))


def test_the_rollup_equals_a_live_count_and_follows_changes():
    sender, other = SenderNumberFactory(), SenderNumberFactory()
    recent = messages(sender, STATES, age=timedelta(minutes=10))
    messages(sender, STATES[:3], age=timedelta(hours=5))
    messages(other, STATES, age=timedelta(minutes=3))  # another tenant's: never counted in
    now = timezone.now()
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)

    assert rollup_refresh(now=now) == 3  # three buckets (tenant, five minutes) had changes
    for since in (hour, day):
        counts, at = states_since(tenant_ids=[sender.tenant_id], since=since, now=now)
        assert at == now and counts == live(sender.tenant, since)

    # A status arrives: the message moves on, its bucket is counted again — and only it.
    Message.objects.filter(pk=recent[1].pk).update(state="read", state_changed_at=timezone.now())
    later = timezone.now()
    assert rollup_refresh(now=later) == 1  # the changed bucket alone
    counts, _ = states_since(tenant_ids=[sender.tenant_id], since=day, now=later)
    assert counts == live(sender.tenant, day) and counts["read"] == 2
    rows = StateCount.objects.count()
    rollup_refresh(now=later)  # again: a bucket is replaced, never added to
    assert StateCount.objects.count() == rows
    assert states_since(tenant_ids=[sender.tenant_id], since=day, now=later)[0] == counts


def test_a_stale_rollup_is_not_shown_the_page_counts_live():
    sender = SenderNumberFactory()
    messages(sender, STATES, age=timedelta(minutes=1))
    now = timezone.now()
    counts, at = states_since(
        tenant_ids=[sender.tenant_id], since=now - timedelta(hours=1), now=now
    )
    assert at is None and counts == live(sender.tenant, now - timedelta(hours=1))  # never ran
    rollup_refresh(now=now)
    RollupMark.objects.update(at=now - STALE - timedelta(seconds=1))  # the beat stopped
    messages(sender, ["accepted"], age=timedelta(seconds=5))
    counts, at = states_since(
        tenant_ids=[sender.tenant_id], since=now - timedelta(hours=1), now=now
    )
    assert at is None and counts["accepted"] == 3
