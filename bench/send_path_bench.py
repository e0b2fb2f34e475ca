"""Send path throughput: messages/s from the API to `accepted`, with a baseline.

    scripts/with-services.sh .venv/bin/python bench/send_path_bench.py [--messages 5000]
    (or: make bench)

Needs the PostgreSQL and Redis that scripts/with-services.sh starts. In one session it starts
the sandbox (no throughput limit) and a real Celery worker (prefork, 2 processes), then:

1. baseline: the naive design — one chain of 4 tasks per message, each one UPDATE — over
   1,000 messages (100-150 items/s on 2 cores, tuned);
2. Waypost: N messages through ``POST /api/v1/messages/batch`` (1,000 per request), timed
   until every one is ``accepted`` with its full ledger.

It prints both rates and their ratio. The goal that follows the send-path issue is >= 500
messages/s to `accepted`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare_database() -> None:
    import psycopg

    base = os.environ["DATABASE_URL"]
    with psycopg.connect(base.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS waypost_bench")
        conn.execute("CREATE DATABASE waypost_bench")
    os.environ["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/waypost_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--baseline-messages", type=int, default=1000)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ or "REDIS_URL" not in os.environ:
        raise SystemExit("run it with scripts/with-services.sh (or make bench)")
    prepare_database()
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from celery import chain
    from django.db.models import Count
    from django.utils import timezone
    from rest_framework.test import APIClient

    from bench.stack import body
    from config.celery_app import app
    from devtools.servers import SandboxProcess
    from devtools.worker import Worker
    from messaging import dispatch
    from messaging.models import Message
    from templates_registry.services import template_create
    from tenants.services import api_key_create, tenant_create
    from whatsapp import get_provider

    sandbox = SandboxProcess("", approve_after=0, default_mps=0, seed=1)
    from django.conf import settings

    settings.SANDBOX_URL = sandbox.url
    settings.ALLOWED_HOSTS = ["testserver"]  # the API is called in process, as tests do
    get_provider.cache_clear()
    env = os.environ | {"SANDBOX_URL": sandbox.url, "CELERY_DB_REUSE_MAX": "1000"}
    worker = Worker(env | {"CELERY_IMPORTS": "bench.tasks"}, name="bench")  # + baseline tasks
    try:
        bundle = tenant_create(
            slug="bench",
            name="Bench",
            phone_number_id="bench-phone",
            waba_id="bench-waba",
            messages_per_second=1000,
        )
        tenant = bundle.tenant
        template = template_create(
            tenant=tenant,
            definition={
                "name": "order_update",
                "language": "en_US",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} shipped."}],
            },
        )
        assert template.status == "APPROVED", template.submission_error
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(tenant=tenant).raw}")
        dispatch.announce_queue(tenant.queue_name)  # the worker started before the tenant

        def items(count, prefix):
            return [
                {"idempotency_key": f"{prefix}-{i}", **body(f"+49151{i:08d}", f"{prefix}-{i}")}
                for i in range(count)
            ]

        # --- baseline: one chain of 4 one-UPDATE tasks per message -----------------------
        base_items = items(args.baseline_messages, "base")
        now = timezone.now()
        rows = [
            Message(
                tenant=tenant,
                sender=bundle.sender,
                recipient=i["to"],
                template_name="order_update",
                template_language="en_US",
                template_category="UTILITY",
                idempotency_key=i["idempotency_key"],
                request_hash="-",
                state_changed_at=now,
                state="cancelled",
                state_rank=10**9 + 1,
            )
            for i in base_items
        ]
        Message.objects.bulk_create(rows)
        started = time.monotonic()
        for row in rows:
            chain(
                *[
                    app.signature(
                        "bench.step", args=(str(row.pk),) if n == 0 else (), queue=tenant.queue_name
                    )
                    for n in range(4)
                ]
            ).apply_async()
        while Message.objects.filter(pk__in=[r.pk for r in rows], attempts=4).count() < len(rows):
            time.sleep(0.2)
        baseline = len(rows) / (time.monotonic() - started)

        # --- Waypost: batch API to accepted ---------------------------------------------
        started = time.monotonic()
        ids = []
        for offset in range(0, args.messages, 1000):
            batch = items(min(1000, args.messages - offset), f"w{offset}")
            response = client.post("/api/v1/messages/batch", {"messages": batch}, format="json")
            ids += [r["message"]["id"] for r in response.json()["results"]]
        api_done = time.monotonic() - started
        while Message.objects.filter(pk__in=ids, state="accepted").count() < len(ids):
            time.sleep(0.2)
            if time.monotonic() - started > 600:
                raise SystemExit("timed out waiting for acceptance")
        elapsed = time.monotonic() - started
        rate = len(ids) / elapsed
        events = Message.objects.filter(pk__in=ids).aggregate(n=Count("events"))["n"] / len(ids)
        stats = sandbox.get("/_sandbox/stats").json()
        print(
            f"send path bench: {os.cpu_count()} cores, worker prefork x2, "
            f"batch size {settings.WAYPOST_BATCH_SIZE}"
        )
        print(f"  baseline (4 one-UPDATE tasks per message)  {baseline:7.0f} messages/s")
        print(
            f"  Waypost API -> accepted                    {rate:7.0f} messages/s  "
            f"(ratio {rate / baseline:.2f}; {len(ids)} messages in {elapsed:.1f}s, API part "
            f"{api_done:.1f}s; {events:.1f} ledger events each; sandbox accepted "
            f"{stats['accepted']}, duplicates {stats['duplicate_submissions']})"
        )
    finally:
        worker.stop()
        sandbox.stop()


if __name__ == "__main__":
    main()
