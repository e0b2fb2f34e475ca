"""``EXPLAIN (ANALYZE, BUFFERS)`` of the hot queries, on a message table of realistic size.

    scripts/with-services.sh .venv/bin/python bench/explain.py [--messages 100000]

Fills a throw-away database with ``--messages`` settled messages of one tenant (and their
``requested``/``accepted`` events) plus 200 queued ones, then prints the plan and timing of
each query the send path and the webhook path run per request or per batch, built from the
same querysets the code uses. What to look for: index scans on the named indexes, no sort of
the whole table, and times that do not grow with the table (bench/RESULTS.md has the reading).
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        raise SystemExit("run it with scripts/with-services.sh")
    import psycopg

    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS waypost_explain")
        conn.execute("CREATE DATABASE waypost_explain")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DATABASE_URL=base + "/waypost_explain",
        SECRET_KEY="explain-" + "x" * 40,
        CELERY_BROKER_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        WHATSAPP_APP_SECRET="explain",
        WHATSAPP_VERIFY_TOKEN="explain",
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from messaging.models import Message, MessageEvent
    from messaging.send import dispatch
    from tenants.services import tenant_create

    call_command("migrate", verbosity=0)
    bundle = tenant_create(
        slug="explain", name="Explain", phone_number_id="1000000001", waba_id="2000000001"
    )
    tenant, sender, now = bundle.tenant, bundle.sender, timezone.now()

    def message(i: int, state: str, rank: int) -> Message:
        return Message(
            id=uuid.uuid4(),
            tenant=tenant,
            sender=sender,
            recipient=f"+49151{i:08d}",
            template_name="order_update",
            template_language="en_US",
            template_category="UTILITY",
            idempotency_key=f"k{i}",
            request_hash="-",
            state=state,
            state_rank=rank,
            state_changed_at=now,
            provider_message_id=f"wamid.{i}" if state != "queued" else None,
        )

    print(f"filling: {args.messages:,} read messages and 200 queued …", flush=True)
    for start in range(0, args.messages, 5000):
        rows = [message(i, "read", 10**10) for i in range(start, min(start + 5000, args.messages))]
        Message.objects.bulk_create(rows)
        MessageEvent.objects.bulk_create(
            MessageEvent(message=m, type=t, source="api", occurred_at=now, dedupe_key=f"{t}:0")
            for m in rows
            for t in ("requested", "accepted")
        )
    Message.objects.bulk_create(message(args.messages + i, "queued", 0) for i in range(200))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    queries = {
        "drain claim (messaging.send.pipeline.claim_batch)": Message.objects.select_for_update(
            skip_locked=True, of=("self",)
        )
        .filter(dispatch.due_messages(now=now), tenant=tenant)
        .select_related("sender")
        .order_by("created_at")[: settings.WAYPOST_BATCH_SIZE],
        "idempotency replay lookup (messaging.send.intake._replay)": Message.objects.filter(
            tenant=tenant, idempotency_key=f"k{args.messages // 2}"
        )[:1],
        "status webhook: message by wamid (messaging.track.inbound)": Message.objects.filter(
            provider_message_id__in=[f"wamid.{args.messages // 3}", f"wamid.{args.messages // 4}"]
        ),
        "API list, newest first (messaging.selectors.message_list)": Message.objects.filter(
            tenant=tenant
        ).order_by("-created_at", "-id")[:50],
        "ledger of one message (messaging.selectors.message_timeline)": MessageEvent.objects.filter(
            message_id=Message.objects.filter(idempotency_key="k7").values("pk")[:1]
        ),
        "reconciler: accepted, no status (operations.reconciler)": Message.objects.filter(
            state="accepted", stalled=False, state_changed_at__lt=now
        ).values("pk")[:500],
    }
    with transaction.atomic(), connection.cursor() as cursor:  # FOR UPDATE needs one
        for name, queryset in queries.items():
            sql, params = queryset.query.sql_with_params()
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
            print(f"\n== {name}")
            for (line,) in cursor.fetchall():
                print("   " + line)


if __name__ == "__main__":
    main()
