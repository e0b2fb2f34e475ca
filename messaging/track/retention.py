"""Retention: a settled message's ledger is pruned after its tenant's retention period; the
message row — its summary and final state — stays.

The rules
---------
* A message is **prunable** when its state is settled (anything but ``queued``,
  ``retry_scheduled``, ``submitting`` and ``unknown``: those still need the pipeline or an
  operator), its last state change is older than its tenant's ``ledger_retention_days``, and
  its ledger has not been pruned yet. A tenant with ``ledger_retention_days = 0`` keeps every
  ledger.
* Pruning deletes the message's events and sets ``ledger_pruned_at``. The row keeps what an
  operator or a report needs afterwards: recipient, template, state and when, error (code,
  title, class), wamid, pricing, attempts, metadata. The API and the admin say the ledger was
  pruned and when.
* **Archive first** when asked (``archive_dir``): the events go, one JSON object a line, to a
  gzip file per tenant and run (``ledger-<tenant>-<UTC time>.jsonl.gz``), written and closed
  before the batch's transaction deletes them — a failed write deletes nothing.
* The ledger is append-only in the database (a trigger, made by messaging's first migration): it
  lets a DELETE through only inside a transaction that declared itself a retention purge
  (PostgreSQL: ``SET LOCAL waypost.ledger_retention = 'on'``; SQLite, the embedded demo,
  has no session settings, so the purge lifts its delete trigger inside its own transaction).
  Nothing else can delete an event, by mistake or otherwise; UPDATE stays refused for all.
* Batches of ``batch_size`` messages, each in its own short transaction that locks its rows
  (``SKIP LOCKED``: a message a webhook is updating right now is taken on the next run). Safe
  to run twice at once, and to stop at any point.

* **Whole months first** (PostgreSQL): the ledger is partitioned by its message's month
  (``core.partitions``; message ids are UUIDv7). A month whose last day is older than the longest
  retention of any tenant is retired whole: its prunable events are archived (one file a month,
  ``ledger-<YYYY-MM>-<UTC time>.jsonl.gz``, each line naming its tenant), their messages marked
  pruned, and the partition dropped — the events of messages that must stay (a tenant that keeps
  its ledger, a message still unsettled or changed lately) are copied into the month's new,
  small table. No row is DELETEd and nothing is left for vacuum. Then the message-by-message
  pass above prunes what is due earlier (tenants with a shorter retention).

``manage.py retention`` runs it (with the webhook deliveries' own retention,
``webhooks.services.deliveries_prune``); run it daily from cron or a beat row.
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.db import DatabaseError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from core import partitions
from core.db import is_transient
from messaging.models import Message, MessageEvent
from messaging.states import MessageState
from tenants.models import Tenant

log = logging.getLogger(__name__)

UNSETTLED = (
    MessageState.QUEUED,
    MessageState.RETRY_SCHEDULED,
    MessageState.SUBMITTING,
    MessageState.UNKNOWN,
)
SQLITE_TRIGGER = (
    "CREATE TRIGGER messageevent_no_delete BEFORE DELETE ON messaging_messageevent "
    "BEGIN SELECT RAISE(ABORT, 'message events are append-only (DELETE refused)'); END;"
)
LEDGER = partitions.Scheme(
    table=MessageEvent._meta.db_table,
    column="message_id",
    key="uuid7",
    unlock="SET LOCAL waypost.ledger_retention = 'on'",
    relock="SET LOCAL waypost.ledger_retention = 'off'",
)
# A message (``m``, of tenant ``t``) whose ledger may go now (the rules above, in SQL).
PRUNABLE_MESSAGE = (
    "t.ledger_retention_days > 0 "
    f"AND m.state NOT IN ({', '.join(['%s'] * len(UNSETTLED))}) "
    "AND m.state_changed_at < %s - t.ledger_retention_days * interval '1 day'"
)
RETIRING = "waypost_retiring"  # the month's prunable messages (a temporary table)
ARCHIVE_PAGE = 5000


@dataclass
class Pruned:
    messages: int = 0
    events: int = 0
    archives: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"messages": self.messages, "events": self.events, "archives": self.archives}


def prunable(*, tenant: Tenant, now: datetime | None = None):
    """The tenant's messages whose ledger may be pruned now (a queryset)."""
    if not tenant.ledger_retention_days:
        return Message.objects.none()
    cutoff = (now or timezone.now()) - timedelta(days=tenant.ledger_retention_days)
    return Message.objects.filter(
        tenant=tenant, ledger_pruned_at__isnull=True, state_changed_at__lt=cutoff
    ).exclude(state__in=UNSETTLED)


def ledgers_prune(
    *,
    tenants=None,
    now: datetime | None = None,
    archive_dir: Path | None = None,
    batch_size: int = 1000,
    dry_run: bool = False,
) -> Pruned:
    """Prune (or archive, then prune) every prunable ledger of ``tenants`` (default: all)."""
    now = now or timezone.now()
    result = Pruned()
    if tenants is None and not dry_run:
        months_retire(now=now, archive_dir=archive_dir, result=result)
    for tenant in tenants if tenants is not None else Tenant.objects.order_by("slug"):
        eligible = prunable(tenant=tenant, now=now)
        if dry_run:
            result.messages += eligible.count()
            result.events += MessageEvent.objects.filter(message__in=eligible).count()
            continue
        archive = None
        if archive_dir is not None:
            archive_dir.mkdir(parents=True, exist_ok=True)
            archive = archive_dir / f"ledger-{tenant.slug}-{now:%Y%m%dT%H%M%SZ}.jsonl.gz"
        while True:
            messages, events = _prune_batch(eligible, archive, now, batch_size)
            if not messages:
                break
            result.messages += messages
            result.events += events
        if archive is not None and archive.exists():
            result.archives.append(str(archive))
    return result


def _prune_batch(eligible, archive: Path | None, now: datetime, size: int) -> tuple[int, int]:
    with transaction.atomic():
        ids = list(
            eligible.select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            return 0, 0
        events = MessageEvent.objects.filter(message_id__in=ids)
        if archive is not None:
            _append(archive, events)
        with _purge_allowed():
            deleted, _ = events.delete()
        Message.objects.filter(pk__in=ids).update(ledger_pruned_at=now)
    return len(ids), deleted


def _append(archive: Path, events) -> None:
    with gzip.open(archive, "at", encoding="utf-8") as out:
        for e in events.order_by("message_id", "occurred_at", "id").iterator(chunk_size=2000):
            out.write(
                _line(
                    e.message_id, e.type, e.source, e.round, e.occurred_at, e.recorded_at, e.detail
                )
            )


def _line(message_id, type_, source, round_, occurred_at, recorded_at, detail, **more) -> str:
    record = {
        "message_id": str(message_id),
        "type": type_,
        "source": source,
        "round": round_,
        "occurred_at": occurred_at.isoformat(),
        "recorded_at": recorded_at.isoformat(),
        "detail": detail,
    } | more
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"


def months_retire(*, now: datetime, archive_dir: Path | None, result: Pruned) -> None:
    """Retire every month of the ledger older than the longest retention (the rules above). A
    month that meets a busy table (a lock timeout, a deadlock) is left for the next run."""
    longest = Tenant.objects.filter(ledger_retention_days__gt=0).aggregate(
        days=Max("ledger_retention_days")
    )["days"]
    if not longest or not partitions.active(LEDGER):
        return
    horizon = now - timedelta(days=longest)
    for month in partitions.months(LEDGER):
        if partitions.next_month(month) > horizon:
            break
        archive = None
        if archive_dir is not None:
            archive_dir.mkdir(parents=True, exist_ok=True)
            archive = archive_dir / f"ledger-{month:%Y-%m}-{now:%Y%m%dT%H%M%SZ}.jsonl.gz"
        partial = archive.with_name(archive.name + ".partial") if archive else None
        counts = {"messages": 0}

        def prepare(cursor, month=month) -> None:
            # The month's prunable messages, locked in id order as every ledger writer locks
            # them, once: the archive, the mark and the keep test all read this set.
            low, high = LEDGER.bounds(month)
            cursor.execute(f"DROP TABLE IF EXISTS {RETIRING}")
            cursor.execute(f"CREATE TEMP TABLE {RETIRING} (id uuid PRIMARY KEY) ON COMMIT DROP")
            cursor.execute(
                f"INSERT INTO {RETIRING} SELECT m.id FROM messaging_message m "  # noqa: S608
                "JOIN tenants_tenant t ON t.id = m.tenant_id "
                f"WHERE m.id >= %s AND m.id < %s AND {PRUNABLE_MESSAGE} "
                "ORDER BY m.id FOR UPDATE OF m",
                [low, high, *UNSETTLED, now],
            )
            cursor.execute(f"ANALYZE {RETIRING}")

        def before(cursor, partition: str, partial=partial, counts=counts) -> None:
            if partial is not None:
                _archive_month(partition, partial)
                transaction.on_commit(lambda p=partial: p.rename(p.with_suffix("")))
            cursor.execute(
                "UPDATE messaging_message SET ledger_pruned_at = %s "  # noqa: S608
                f"WHERE id IN (SELECT id FROM {RETIRING}) AND ledger_pruned_at IS NULL",
                [now],
            )
            counts["messages"] = cursor.rowcount

        keep = f"NOT EXISTS (SELECT 1 FROM {RETIRING} r WHERE r.id = row.message_id)"  # noqa: S608
        try:
            retired = partitions.retire(LEDGER, month, keep=keep, prepare=prepare, before=before)
        except DatabaseError as exc:
            if partial is not None:
                partial.unlink(missing_ok=True)  # its events are still in the ledger
            if not is_transient(exc):
                raise
            log.warning("ledger month %s left for the next run: %s", f"{month:%Y-%m}", exc)
            continue
        if retired is None or not retired.dropped:
            continue
        result.messages += counts["messages"]
        result.events += retired.dropped
        if archive is not None and archive.exists():
            result.archives.append(str(archive))


def _archive_month(partition: str, archive: Path) -> None:
    """The month's retiring events, streamed by a cursor that lives inside the transaction
    (safe behind a transaction pooler too), grouped by message."""
    sql = (
        "SELECT row.message_id, row.type, row.source, row.round, row.occurred_at, "  # noqa: S608
        f"row.recorded_at, row.detail, t.slug FROM {partition} AS row "
        f"JOIN {RETIRING} r ON r.id = row.message_id "
        "JOIN messaging_message m ON m.id = row.message_id "
        "JOIN tenants_tenant t ON t.id = m.tenant_id ORDER BY row.message_id, row.id"
    )
    with (
        gzip.open(archive, "at", encoding="utf-8") as out,
        connection.connection.cursor(name="waypost_retiring_archive") as stream,
    ):
        stream.itersize = ARCHIVE_PAGE
        stream.execute(sql)
        for *event, detail, slug in stream:
            detail = json.loads(detail) if isinstance(detail, str) else detail
            out.write(_line(*event, detail, tenant=slug))


class _purge_allowed:
    """Inside the caller's transaction: let this transaction's DELETEs through the ledger's
    append-only trigger (see the module docstring)."""

    def __enter__(self):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL waypost.ledger_retention = 'on'")
            elif connection.vendor == "sqlite":
                cursor.execute("DROP TRIGGER IF EXISTS messageevent_no_delete")

    def __exit__(self, *exc):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL waypost.ledger_retention = 'off'")
            elif connection.vendor == "sqlite":
                cursor.execute(SQLITE_TRIGGER)
        return False
