"""``manage.py demo`` (``make demo``): the end-to-end flow on embedded defaults.

No services to install: SQLite under ``var/``, Celery's in-process ``memory://`` broker with a
worker thread in this process, and the sandbox started as a child process in place of Meta.

1. migrates, and makes sure the demo tenant (a sandbox sender), an admin login and the demo
   template exist — the template is submitted to the sandbox, which approves it;
2. sends a batch through the real API and pipeline (validate → transform → submit → check
   acceptance); the sandbox fails a quarter of first submits with a transient error (131016),
   so some messages go through a retry;
3. the sandbox then sends signed status webhooks (duplicated and reordered now and then, as
   Meta does) to this server's /webhooks/whatsapp; they are stored, processed and folded into
   each message's state: most end delivered or read, one recipient fails with 131026;
4. prints a table of the messages' states, then serves the admin and the API until Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import requests
from celery import current_app as app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import get_internal_wsgi_application, run

from core.logging import mask_phone
from messaging.models import Message
from messaging.states import MessageState
from templates_registry.models import MessageTemplate
from templates_registry.services import template_create, template_submit
from tenants.models import Tenant
from tenants.services import api_key_create, tenant_create
from whatsapp import get_provider

DEMO_SLUG = "demo"
DEMO_TEMPLATE = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped and arrives {{3}}."},
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "URL", "text": "Track", "url": "https://example.com/track/{{1}}"},
                {"type": "QUICK_REPLY", "text": "Stop"},
            ],
        },
    ],
}
NAMES = [
    "Ana",
    "Bo",
    "Chidi",
    "Dana",
    "Emeka",
    "Fatima",
    "Gustav",
    "Hana",
    "Ivan",
    "Jun",
    "Kofi",
    "Lena",
]
# Final states: the demo waits for the status webhooks, not just for "accepted".
SETTLED = {
    MessageState.DELIVERED,
    MessageState.READ,
    MessageState.FAILED,
    MessageState.REJECTED,
    MessageState.UNKNOWN,
    MessageState.CANCELLED,
}
DEMO_APP_SECRET = "demo-app-secret"


def demo_message(index: int, name: str) -> dict:
    order = f"A-{1000 + index}"
    return {
        "idempotency_key": f"demo-{int(time.time())}-{index}",
        "to": f"+4915112345{index:03d}",
        "template": {
            "name": "order_update",
            "language": "en_US",
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": order}]},
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": name},
                        {"type": "text", "text": order},
                        {"type": "text", "text": "tomorrow"},
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": [{"type": "text", "text": order}],
                },
            ],
        },
        "metadata": {"order": order},
    }


class Command(BaseCommand):
    help = "Run the end-to-end demo on embedded defaults, then serve the admin and API."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8025)
        parser.add_argument("--messages", type=int, default=12)
        parser.add_argument("--no-serve", action="store_true", help="send, print, then exit")

    def handle(self, *args, port, sandbox_port, messages, no_serve, **options):
        if not settings.CELERY_BROKER_URL.startswith("memory://"):
            raise CommandError(
                "The demo runs on the embedded defaults (CELERY_BROKER_URL="
                "memory://); unset CELERY_BROKER_URL to run it."
            )
        call_command("migrate", interactive=False, verbosity=0)
        if not settings.WHATSAPP_APP_SECRET:
            settings.WHATSAPP_APP_SECRET = DEMO_APP_SECRET
        sandbox = self.start_sandbox(sandbox_port, port)
        try:
            self.run_demo(port, sandbox_port, messages, no_serve)
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=10)

    def start_sandbox(self, port: int, web_port: int) -> subprocess.Popen:
        url = f"http://127.0.0.1:{port}"
        # Seeded: every run shows the same retries and webhook faults.
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox",
                # A throw-away sandbox on loopback for as long as the demo runs: its control
                # endpoints stay open so you can try them (README, "The sandbox").
                "--open-control",
                "--port",
                str(port),
                "--approve-after",
                "0",
                "--seed",
                "42",
                "--error-rates",
                '{"131016": 0.25}',
                "--webhook-url",
                f"http://127.0.0.1:{web_port}/webhooks/whatsapp",
                "--app-secret",
                settings.WHATSAPP_APP_SECRET,
                "--fail-pattern",
                "011$:131026",
                "--read-rate",
                "0.6",
                "--webhook-duplicate-rate",
                "0.2",
                "--webhook-reorder",
            ],
            cwd=Path(settings.BASE_DIR),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ,
        )
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/_sandbox/ping", timeout=1)  # noqa: S310
                break
            except OSError:
                if proc.poll() is not None:
                    raise CommandError(f"the sandbox could not start on port {port}") from None
                time.sleep(0.1)
        settings.SANDBOX_URL = url
        get_provider.cache_clear()
        self.stdout.write(f"Sandbox (a local stand-in for Meta's Cloud API) on {url}")
        return proc

    def start_worker(self, queues: list[str]) -> None:
        # No line per task or per webhook while the batch runs; the table says what happened.
        logging.getLogger("celery").setLevel(logging.WARNING)
        logging.getLogger("django.server").setLevel(logging.WARNING)
        worker = app.WorkController(
            pool_cls="solo",
            concurrency=1,
            queues=queues,
            loglevel="WARNING",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        threading.Thread(target=worker.start, name="celery-worker", daemon=True).start()

    def run_demo(self, port: int, sandbox_port: int, count: int, no_serve: bool) -> None:
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant = tenant_create(
                slug=DEMO_SLUG,
                name="Demo Shop",
                phone_number_id="106540352242922",
                waba_id="102290129340398",
                display_phone_number="+15550783881",
            ).tenant
        template = MessageTemplate.objects.filter(tenant=tenant, name="order_update").first()
        # The sandbox forgets everything when it stops: (re)submit the template every run.
        template = (
            template_submit(template=template)
            if template
            else template_create(tenant=tenant, definition=DEMO_TEMPLATE)
        )
        self.stdout.write(f"Template {template.name}: {template.status} by the sandbox")
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create_superuser("admin", "admin@example.com", "admin")
        raw_key = api_key_create(tenant=tenant, name="demo").raw

        self.start_worker(["waypost", tenant.queue_name])
        base = f"http://127.0.0.1:{port}"
        threading.Thread(
            target=run,
            args=("127.0.0.1", port, get_internal_wsgi_application()),
            kwargs={"threading": True},
            name="http",
            daemon=True,
        ).start()
        self.wait_up(f"{base}/api/schema/")
        batch = [demo_message(i, NAMES[i % len(NAMES)]) for i in range(count)]
        response = requests.post(
            f"{base}/api/v1/messages/batch",
            json={"messages": batch},
            headers={"Authorization": f"Bearer {raw_key}"},
            timeout=60,
        )
        results = response.json()["results"]
        ids = [r["message"]["id"] for r in results if "message" in r]
        self.stdout.write(
            f"POST /api/v1/messages/batch → {response.status_code}: "
            f"{len(ids)} message(s) accepted by the API"
        )
        self.wait_and_print(ids)

        self.stdout.write(self.style.SUCCESS("\nWaypost demo is ready."))
        self.stdout.write(f"""
  Admin        {base}/admin/   (login admin / admin — demo only)
  API docs     {base}/api/docs/
  API key      {raw_key}

  Try:
    curl -s -H 'Authorization: Bearer {raw_key}' '{base}/api/v1/messages?page_size=5'
""")
        logging.getLogger("django.server").setLevel(logging.INFO)
        if not no_serve:
            self.stdout.write(f"Serving on {base} (the worker keeps running). Ctrl-C stops.")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                self.stdout.write("\nStopped.")

    @staticmethod
    def wait_up(url: str) -> None:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)  # noqa: S310
                return
            except OSError:
                time.sleep(0.1)
        raise CommandError(f"{url} did not come up")

    def wait_and_print(self, ids: list[str]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = Counter(Message.objects.filter(pk__in=ids).values_list("state", flat=True))
            if set(states) <= SETTLED:
                break
            time.sleep(0.2)
        self.stdout.write(
            f"\n{'message':<10} {'to':<16} {'state':<10} {'attempts':>8}  {'wamid':<18} "
            f"{'submit error':<13} status webhooks, as they arrived"
        )
        for m in Message.objects.filter(pk__in=ids).order_by("recipient"):
            error = next(
                (
                    e.detail.get("body", {}).get("error", {}).get("code")
                    for e in m.events.filter(type="submit_responded").order_by("id")
                    if isinstance(e.detail.get("body"), dict) and "error" in e.detail["body"]
                ),
                "",
            )
            statuses = " ".join(
                t.removeprefix("status_")
                for t in m.events.filter(source="webhook")
                .order_by("recorded_at", "id")
                .values_list("type", flat=True)
            )
            self.stdout.write(
                f"{str(m.pk)[:8]:<10} {mask_phone(m.recipient):<16} {m.state:<10} "
                f"{m.attempts:>8}  {(m.provider_message_id or '')[:16]:<18} "
                f"{error or ''!s:<13} {statuses}"
            )
        summary = Counter(Message.objects.filter(pk__in=ids).values_list("state", flat=True))
        self.stdout.write("\nStates: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
