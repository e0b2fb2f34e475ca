"""Webhook endpoint throughput: signed single-status POSTs stored before the 200, and the
backlog applied to messages — with a ratio to an empty Django view in the same session.

    scripts/with-services.sh .venv/bin/python bench/webhook_bench.py [--duration 10]
    (or: make bench)

Serves Waypost with gunicorn (production settings, gthread 2 workers x 4 threads, which
measured best on 2 cores), pre-creates messages with wamids, pre-signs one unique
status webhook per request (a duplicate body would be stored once and flatter the figure), and
runs wrk against: the empty view ``/healthz`` (baseline), then ``POST /webhooks/whatsapp``.
Then it drains the stored deliveries into the ledger and reports how fast.

Goals (issue 5): >= 1,000 requests/s, p99 < 250 ms, every one stored; backlog applied at the
same rate; ratio to the empty view >= 0.30.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECRET = "bench-app-secret"
THREADS, CONNECTIONS = 2, 16


def wrk(url: str, duration: int, env: dict, script: str | None = None) -> tuple[float, float]:
    cmd = [
        shutil.which("wrk") or "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{duration}s",
        "--latency",
        url,
    ]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    if "Non-2xx" in out:
        print("  warning:", re.search(r"Non-2xx.*", out).group(0))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--bodies", type=int, default=40_000)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        raise SystemExit("run it with scripts/with-services.sh (or make bench)")
    import psycopg

    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS waypost_hooks")
        conn.execute("CREATE DATABASE waypost_hooks")
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": base + "/waypost_hooks",
        "SECRET_KEY": "bench-" + "x" * 40,
        "CELERY_BROKER_URL": os.environ["REDIS_URL"],
        "WHATSAPP_APP_SECRET": SECRET,
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "SECURE_SSL_REDIRECT": "False",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "WRK_THREADS": str(THREADS),
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from messaging.ledger import NewEvent, record
    from messaging.models import Message
    from messaging.states import EventSource, EventType
    from tenants.services import tenant_create
    from webhooks.models import WebhookDelivery
    from webhooks.services import deliveries_drain

    bundle = tenant_create(
        slug="hooks", name="Hooks", phone_number_id="hooks-phone", waba_id="hooks-waba"
    )
    now = timezone.now()
    messages = [
        Message(
            tenant=bundle.tenant,
            sender=bundle.sender,
            recipient="+4915112345678",
            template_name="t",
            template_language="en_US",
            template_category="UTILITY",
            idempotency_key=f"h{i}",
            request_hash="-",
            state_changed_at=now,
            provider_message_id=f"wamid.bench{i:07d}",
        )
        for i in range(args.bodies)
    ]
    Message.objects.bulk_create(messages, batch_size=2000)
    for start in range(0, len(messages), 2000):
        record(
            [
                NewEvent(m.pk, EventType.ACCEPTED, EventSource.PROVIDER)
                for m in messages[start : start + 2000]
            ]
        )

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # settle before measuring: no autovacuum mid-run

    bodies = Path(tempfile.mkdtemp()) / "bodies.tsv"
    with bodies.open("w") as out:
        for i in range(args.bodies):
            body = json.dumps(
                {
                    "object": "whatsapp_business_account",
                    "entry": [
                        {
                            "id": "hooks-waba",
                            "changes": [
                                {
                                    "field": "messages",
                                    "value": {
                                        "messaging_product": "whatsapp",
                                        "metadata": {
                                            "display_phone_number": "15550783881",
                                            "phone_number_id": "hooks-phone",
                                        },
                                        "statuses": [
                                            {
                                                "id": f"wamid.bench{i:07d}",
                                                "status": "delivered",
                                                "timestamp": str(1750030075 + i),
                                                "recipient_id": "4915112345678",
                                                "pricing": {
                                                    "billable": True,
                                                    "pricing_model": "PMP",
                                                    "type": "regular",
                                                    "category": "utility",
                                                },
                                            }
                                        ],
                                    },
                                }
                            ],
                        }
                    ],
                },
                separators=(",", ":"),
            )
            signature = (
                "sha256=" + hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
            )
            out.write(f"{signature}\t{body}\n")
    env["WEBHOOK_BODIES"] = str(bodies)

    port = 18000 + os.getpid() % 1000
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "--threads",
            str(args.threads),
            "-k",
            "gthread",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        print(
            f"webhook bench: gunicorn gthread 2x{args.threads}, wrk -t{THREADS} -c{CONNECTIONS} "
            f"-d{args.duration}s, {os.cpu_count()} cores"
        )
        wrk(f"{url}/healthz", 2, env)  # warm-up
        empty_rps, empty_p99 = wrk(f"{url}/healthz", args.duration, env)
        print(
            f"  baseline GET /healthz (empty view)  {empty_rps:7.0f} req/s  p99 {empty_p99:6.1f} ms"
        )
        hook_rps, hook_p99 = wrk(
            f"{url}/webhooks/whatsapp", args.duration, env, str(ROOT / "bench" / "hooks.lua")
        )
        stored = WebhookDelivery.objects.count()
        print(
            f"  POST /webhooks/whatsapp (signed)    {hook_rps:7.0f} req/s  p99 "
            f"{hook_p99:6.1f} ms  (ratio {hook_rps / empty_rps:.2f}; {stored} stored)"
        )
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=20)
    started = time.monotonic()
    counts = deliveries_drain(budget_seconds=600)
    elapsed = time.monotonic() - started
    print(
        f"  backlog applied to messages         {counts['statuses'] / elapsed:7.0f} "
        f"statuses/s  ({counts['statuses']} in {elapsed:.1f}s; "
        f"{Message.objects.filter(state='delivered').count()} messages delivered)"
    )


if __name__ == "__main__":
    main()
