"""The operations page's live counts — messages by state, last hour and last 24 hours — as a
rollup that stays fast at millions of messages a day.

The rules
---------
* ``StateCount`` holds, per tenant and five-minute bucket of creation, how many messages are in
  each state now. The page adds up the buckets of the last hour (the bucket holding "an hour
  ago" included: 60 to 65 minutes) and of the last 24 hours: a few hundred small rows per
  tenant, read from the replica when there is one, instead of counting a day of messages.
* ``rollup_refresh`` (the beat's ``waypost: rollup`` row, every 30 seconds) finds the buckets
  whose messages changed state since its last run — through the reconciler's index on
  ``(state, state_changed_at)``, with two minutes of overlap for transactions that committed
  late — and counts each of those buckets again, whole. A message flagged stalled is out of
  that index; its state changes clear the flag (``messaging.track.stalls``), so a change is
  seen all the same, and the first run (or the first after a stop of a day) counts every
  bucket. A bucket is replaced, never adjusted:
  a run that repeats or overlaps another changes nothing. Buckets older than 25 hours go.
* Runs are serialised by a row lock on their ``RollupMark``: two beats by mistake count once
  each, in turn.
* The page counts live instead when the rollup is older than ``STALE`` (no beat running: the
  embedded demo, or a beat that stopped), and says which it shows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from messaging.models import Message
from messaging.states import MessageState
from operations.models import RollupMark, StateCount

BUCKET = timedelta(minutes=5)
OVERLAP = timedelta(minutes=2)
KEPT = timedelta(hours=25)
STALE = timedelta(minutes=2)
NAME = "states"


def bucket_of(at: datetime) -> datetime:
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % int(BUCKET.total_seconds()), tz=UTC)


def rollup_refresh(*, now: datetime | None = None) -> int:
    """Count again every bucket with a change since the last run; how many were counted."""
    now = now or timezone.now()
    RollupMark.objects.get_or_create(name=NAME, defaults={"at": now - KEPT})
    with transaction.atomic():
        mark = RollupMark.objects.select_for_update().get(name=NAME)
        recent = Message.objects.filter(created_at__gte=now - KEPT)
        if mark.at <= now - KEPT:  # the first run (or after a long stop): every bucket
            changed = recent
        else:  # the buckets with a change since the last run, found by the reconciler's index
            changed = recent.filter(
                state__in=MessageState.values,  # its leading column: one descent each
                stalled=False,
                state_changed_at__gte=mark.at - OVERLAP,
            )
        minutes = (
            changed.annotate(minute=TruncMinute("created_at"))
            .values_list("tenant_id", "minute")
            .distinct()
        )
        buckets = sorted({(tenant_id, bucket_of(minute)) for tenant_id, minute in minutes})
        for tenant_id, start in buckets:
            counts = (
                Message.objects.filter(
                    tenant_id=tenant_id, created_at__gte=start, created_at__lt=start + BUCKET
                )
                .values_list("state")
                .annotate(n=Count("pk"))
                .values_list("state", "n")
            )
            StateCount.objects.filter(tenant_id=tenant_id, bucket=start).delete()
            StateCount.objects.bulk_create(
                StateCount(tenant_id=tenant_id, bucket=start, state=state, n=n)
                for state, n in counts
            )
        StateCount.objects.filter(bucket__lt=now - KEPT).delete()
        mark.at = now
        mark.save(update_fields=["at"])
    return len(buckets)


def states_since(*, tenant_ids, since: datetime, now: datetime) -> tuple[dict, datetime | None]:
    """{state: count} of the tenants' messages created since ``since``, and when they were
    rolled up (None: counted live, the rollup being stale or missing)."""
    mark = RollupMark.objects.filter(name=NAME).values_list("at", flat=True).first()
    if mark is None or now - mark > STALE:
        live = (
            Message.objects.filter(tenant_id__in=tenant_ids, created_at__gte=since)
            .values_list("state")
            .annotate(n=Count("pk"))
            .values_list("state", "n")
        )
        return dict(live), None
    rolled = (
        StateCount.objects.filter(tenant_id__in=tenant_ids, bucket__gte=bucket_of(since))
        .values_list("state")
        .annotate(total=Sum("n"))
        .values_list("state", "total")
    )
    return dict(rolled), mark
