"""Retention as deployed (issue 22 §3): a month of the ledger retired whole against the same
amount pruned row by row, in the same run.

One database, migrated and run on production settings (``devtools.stack``, no process started
but ``manage.py``), holds two tenants with ``ledger_retention_days`` 30 and ``MESSAGES``
settled messages each, five events a message:

* **whole month** — tenant A's messages were created four months ago, so the ledger's partition
  of that month is past every retention: ``manage.py retention --archive`` archives and drops it;
* **row by row** (the baseline, and what retention did before) — tenant B's messages were
  created this month, their last change 40 days ago: ``manage.py retention --tenant b
  --archive`` archives them and deletes their rows from this month's partition.

For each: the command's wall time, rows gone, and what is left behind — the table's size on
disk and its dead rows (``pg_stat_user_tables.n_dead_tup``: what vacuum must still chase).

    scripts/with-services.sh .venv/bin/python bench/retention.py [--messages 100000]

Writes ``bench/results/retention.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.stack import ROOT, Stack

MESSAGES = 100_000
SEED = """
from datetime import timedelta
from django.utils import timezone
from messaging.models import Message
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, record
from tenants.models import SenderNumber, Tenant
for slug in ("a", "b"):
    tenant = Tenant.objects.create(slug=slug, name=slug.upper(), ledger_retention_days=30)
    sender = SenderNumber.objects.create(
        tenant=tenant, provider="sandbox", phone_number_id="1" + slug, waba_id="2" + slug
    )
    message = Message.objects.create(
        tenant=tenant, sender=sender, recipient="+4915112345678", template_name="order_update",
        template_category="UTILITY", idempotency_key="seed", request_hash="-",
        state_changed_at=timezone.now(), error_code="", provider_message_id="wamid.seed-" + slug,
    )
    record([NewEvent(message.pk, EventType.REQUESTED, EventSource.API)] + [
        NewEvent(message.pk, t, EventSource.PROVIDER)
        for t in (EventType.ACCEPTED, EventType.STATUS_SENT, EventType.STATUS_DELIVERED,
                  EventType.STATUS_READ)
    ])
"""


def fill(stack: Stack, slug: str, count: int, created: datetime) -> None:
    """``count`` copies of the tenant's seed message and its five events, made ``created``
    (UUIDv7 ids of that time), last changed 40 days ago, settled (``read``)."""
    columns = [
        name
        for (name,) in stack.sql(
            "select column_name from information_schema.columns "
            "where table_name = 'messaging_message' order by ordinal_position"
        )
    ]
    ms = int(created.timestamp() * 1000)
    override = {
        "id": f"(lpad(to_hex({ms} + i), 12, '0') || '7' "
        "|| substr(md5(i::text || 'x'), 1, 19))::uuid",
        "idempotency_key": "'k-' || i",
        "provider_message_id": f"'wamid.{slug}-' || i",
        "created_at": f"'{created.isoformat()}'::timestamptz",
        "state_changed_at": "now() - interval '40 days'",
        "state": "'read'",
    }
    select = ", ".join(override.get(name, name) for name in columns)
    stack.sql(
        f"insert into messaging_message ({', '.join(columns)}) "
        f"select {select} from messaging_message m, generate_series(1, %s) i "
        "where m.idempotency_key = 'seed' and m.tenant_id = (select id from tenants_tenant "
        "where slug = %s)",
        [count, slug],
    )
    stack.sql(
        "insert into messaging_messageevent (type, source, round, occurred_at, recorded_at, "
        "detail, dedupe_key, message_id) select e.type, e.source, e.round, e.occurred_at, "
        "e.recorded_at, e.detail, e.dedupe_key, m.id from messaging_message m "
        "join tenants_tenant t on t.id = m.tenant_id join messaging_message s "
        "on s.tenant_id = t.id and s.idempotency_key = 'seed' "
        "join messaging_messageevent e on e.message_id = s.id "
        "where t.slug = %s and m.idempotency_key <> 'seed'",
        [slug],
    )


def ledger_state(stack: Stack) -> dict:
    """Per partition of the ledger: live rows, dead rows, size on disk (MB)."""
    stack.sql("analyze messaging_messageevent")
    rows = stack.sql(
        "select c.relname, s.n_live_tup, s.n_dead_tup, pg_total_relation_size(c.oid) "
        "from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "join pg_stat_user_tables s on s.relid = c.oid "
        "where i.inhparent = 'messaging_messageevent'::regclass order by c.relname"
    )
    return {name: (live, dead, size / 1e6) for name, live, dead, size in rows}


def timed(stack: Stack, *args: str) -> tuple[float, dict]:
    start = time.monotonic()
    out = stack.manage("retention", *args)
    return time.monotonic() - start, json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=MESSAGES)
    options = parser.parse_args()
    now = datetime.now(UTC)
    old = (now - timedelta(days=120)).replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    begun = time.monotonic()
    with Stack(database="waypost_retention_bench") as stack, tempfile.TemporaryDirectory() as tmp:
        stack.manage("shell", "-c", SEED)
        old_month = f"messaging_messageevent_p{old:%Y%m}"
        this_month = f"messaging_messageevent_p{now:%Y%m}"
        # The old month's partition, as the daily job would have made it then.
        stack.manage(
            "shell",
            "-c",
            "from datetime import datetime; from core import partitions; "
            "from messaging.track.retention import LEDGER; "
            f"partitions.ensure(LEDGER, now=datetime.fromisoformat('{old.isoformat()}'), ahead=0)",
        )
        fill(stack, "a", options.messages, old)
        fill(stack, "b", options.messages, now - timedelta(hours=1))
        before = ledger_state(stack)
        rows_seconds, rows_report = timed(stack, "--tenant", "b", "--archive", f"{tmp}/rows")
        after_rows = ledger_state(stack)
        month_seconds, month_report = timed(stack, "--archive", f"{tmp}/months")
        after = ledger_state(stack)
        archived = {
            kind: sum(p.stat().st_size for p in Path(tmp, kind).glob("*.gz")) / 1e6
            for kind in ("rows", "months")
        }
    minutes = (time.monotonic() - begun) / 60
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    gone_rows = rows_report["ledgers"]["events"]
    gone_month = month_report["ledgers"]["events"]
    lines = [
        "# Retention: a month retired whole, against row by row",
        "",
        f"`scripts/with-services.sh .venv/bin/python bench/retention.py --messages "
        f"{options.messages}` at `{commit}` — {now:%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{platform.machine()}, Python {platform.python_version()}, {minutes:.1f} min. One "
        "database on production settings, `manage.py retention --archive` as deployed; two "
        f"tenants with {options.messages:,} settled messages each, five events a message, "
        "retention 30 days. Row by row: tenant B's ledgers (this month's partition, last "
        "changed 40 days ago), the way retention pruned every ledger before. Whole month: "
        "tenant A's (created four months ago: its month's partition is past every retention).",
        "",
        "| | Events gone | Wall time | Events/s | Left in the table: live / dead rows | "
        "Table on disk, before → after | Archive |",
        "|---|---|---|---|---|---|---|",
        f"| row by row (baseline) | {gone_rows:,} | {rows_seconds:.1f} s | "
        f"{gone_rows / rows_seconds:,.0f} | {after_rows[this_month][0]:,} / "
        f"**{after_rows[this_month][1]:,}** | {before[this_month][2]:.0f} → "
        f"{after_rows[this_month][2]:.0f} MB | {archived['rows']:.1f} MB |",
        f"| whole month | {gone_month:,} | {month_seconds:.1f} s | "
        f"{gone_month / month_seconds:,.0f} | partition dropped: **0** dead rows | "
        f"{before[old_month][2]:.0f} → {after.get(old_month, (0, 0, 0))[2]:.0f} MB | "
        f"{archived['months']:.1f} MB |",
        "",
        "Dead rows are what autovacuum must still visit and the space it can only reuse, not "
        "return; a dropped partition returns its files at once. Both runs archive first "
        "(gzipped JSON Lines) inside their transactions, which is most of either's time.",
        "",
    ]
    out = ROOT / "bench" / "results" / "retention.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
