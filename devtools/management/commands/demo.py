"""``manage.py demo`` (``make demo``): the end-to-end flow on embedded defaults.

No services to install: SQLite under ``var/``, Celery's in-process ``memory://`` broker with a
worker thread and a callback deliverer thread in this process, and the sandbox started as a
child process in place of Meta.

1. migrates, and makes sure the demo tenant (a sandbox sender), an admin login and the demo
   template exist — the template is submitted to the sandbox, which approves it;
2. points the demo tenant's callbacks at a receiver inside this process (unless you set your
   own callback URL), which checks each callback's signature;
3. sends a batch through the real API and pipeline (validate → transform → submit → check
   acceptance); the sandbox fails a quarter of first submits with a transient error (131016),
   so some messages go through a retry;
4. the sandbox then sends signed status webhooks (duplicated and reordered now and then, as
   Meta does) to this server's /webhooks/whatsapp; they are stored, processed and folded into
   each message's state: most end delivered or read, one recipient fails with 131026, and each
   change goes to the tenant's callback endpoint;
5. prints a table of the messages' states, writes ``var/demo.env`` (``WAYPOST`` and a fresh
   ``KEY``: ``source var/demo.env`` in a second terminal, then the README's examples run as
   written), and serves the admin and the API until Ctrl-C.

The terminal shows the demo's own lines only: every log record and warning of this process and
the sandbox's output go to ``var/demo.log``. The worker behaves as ``celery worker`` does: it
consumes the default queue and the shared lanes (``core.queues``) from the start, and the queue
of a tenant given one of its own once that tenant sends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from celery import current_app as app
from celery import signals
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import get_internal_wsgi_application, run
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from callbacks.deliverer import Deliverer
from callbacks.models import CallbackEvent, CallbackStatus
from callbacks.services import EVENT_TYPES, active_secrets, endpoint_configure, endpoint_get
from core.ids import short
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
# The path of the demo's own callback receiver: a URL with it is the demo's, replaced each run
# (the receiver's port changes); any other callback URL is the user's and left alone.
RECEIVER_PATH = "/demo-callbacks"


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


def log_to_file(path: Path):
    """Send every log record, Python warning and stray traceback of this process to ``path``
    (returned, open) instead of the terminal, which keeps the demo's own lines (``stdout``).

    ``sys.stderr`` itself becomes the file: Celery's Django fix-up runs ``django.setup()`` again
    when the worker starts, which rebuilds the logging handlers on whatever ``sys.stderr`` is
    then; the handlers that exist already are pointed at the file too."""
    log = path.open("a", buffering=1, encoding="utf-8")
    terminal = {sys.stderr, sys.__stderr__}
    sys.stderr = log
    for logger in [logging.getLogger(), *logging.root.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream in terminal:
                handler.setStream(log)
    logging.captureWarnings(True)
    return log


def write_env(path: Path, values: dict[str, str]) -> None:
    """``export NAME=value`` lines, readable by the user only (it holds an API key), replaced
    whole: a reader never sees half a file."""
    partial = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())
    partial.replace(path)


def shown(path: Path) -> str:
    """``path`` as the user would type it from here."""
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


class Receiver:
    """The demo tenant's callback endpoint: a loopback HTTP server that checks each callback's
    Standard Webhooks signature, answers 204 (401 to a bad signature) and counts."""

    def __init__(self, secrets: list[str]) -> None:
        self.verifiers = [Webhook(secret) for secret in secrets]
        self.received: Counter = Counter()
        self.refused = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = receiver.verify(body, dict(self.headers))
                self.send_response(204 if kind else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{RECEIVER_PATH}"
        threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True).start()

    def verify(self, body: bytes, headers: dict) -> str | None:
        for verifier in self.verifiers:
            with contextlib.suppress(WebhookVerificationError):
                kind = verifier.verify(body, headers)["type"]
                with self.lock:
                    self.received[kind] += 1
                return kind
        with self.lock:
            self.refused += 1
        return None


class Command(BaseCommand):
    help = "Run the end-to-end demo on embedded defaults, then serve the admin and API."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8025)
        parser.add_argument("--messages", type=int, default=12)
        parser.add_argument(
            "--var-dir",
            type=Path,
            default=None,
            help="where the demo writes demo.env and demo.log (default: var/; the database is "
            "DATABASE_URL's)",
        )
        parser.add_argument("--no-serve", action="store_true", help="send, print, then exit")

    def handle(self, *args, port, sandbox_port, messages, var_dir, no_serve, **options):
        if not settings.CELERY_BROKER_URL.startswith("memory://"):
            raise CommandError(
                "The demo runs on the embedded defaults (CELERY_BROKER_URL="
                "memory://); unset CELERY_BROKER_URL to run it."
            )
        var_dir = Path(var_dir or settings.VAR_DIR)
        var_dir.mkdir(parents=True, exist_ok=True)
        log_path, env_path = var_dir / "demo.log", var_dir / "demo.env"
        log_path.write_text("")  # this run's log only
        log = log_to_file(log_path)
        self.stdout.write(
            f"Logs of this run (the server's, the worker's, the sandbox's): {shown(log_path)}"
        )
        call_command("migrate", interactive=False, verbosity=0)
        if not settings.WHATSAPP_APP_SECRET:
            settings.WHATSAPP_APP_SECRET = DEMO_APP_SECRET
        stop = threading.Event()
        sandbox = self.start_sandbox(sandbox_port, port, log)
        try:
            self.run_demo(port, messages, no_serve, env_path, stop)
        finally:
            stop.set()
            with contextlib.suppress(FileNotFoundError):
                env_path.unlink()  # its key would point at a server that is gone
            sandbox.terminate()
            sandbox.wait(timeout=10)

    def start_sandbox(self, port: int, web_port: int, log) -> subprocess.Popen:
        url = f"http://127.0.0.1:{port}"
        # Seeded: every run shows the same retries and webhook faults.
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox",
                # A throw-away sandbox on loopback for as long as the demo runs: its control
                # endpoints stay open so you can try them (docs/concepts/sandbox.md).
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
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ,
        )
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/_sandbox/ping", timeout=1)  # noqa: S310
                break
            except OSError:
                if proc.poll() is not None:
                    raise CommandError(
                        f"the sandbox could not start on port {port} (is it free? "
                        f"`make demo SANDBOX_PORT=...` moves it)"
                    ) from None
                time.sleep(0.1)
        settings.SANDBOX_URL = url
        get_provider.cache_clear()
        self.stdout.write(f"Sandbox (a local stand-in for Meta's Cloud API) on {url}")
        return proc

    @staticmethod
    def start_worker() -> None:
        """A Celery worker thread on the in-process broker that consumes what ``celery worker``
        consumes: ``CELERY_TASK_QUEUES`` (the default queue and the shared lanes), the queues
        of tenants with one of their own from the start (the ``worker_ready`` receivers), and
        such a queue given later once it is announced."""

        class Worker(app.WorkController):
            def on_consumer_ready(self, consumer):
                signals.worker_ready.send(sender=consumer)

        worker = Worker(
            pool_cls="solo",
            concurrency=1,
            queues=[queue.name for queue in settings.CELERY_TASK_QUEUES],
            loglevel="WARNING",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        threading.Thread(target=worker.start, name="celery-worker", daemon=True).start()

    @staticmethod
    def start_deliverer(stop: threading.Event) -> None:
        """The callback deliverer (the Procfile's ``callbacks``), as a thread."""
        deliverer = Deliverer(threads=2)
        threading.Thread(target=deliverer.run, args=(stop,), name="callbacks", daemon=True).start()

    def demo_tenant(self) -> Tenant:
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant = tenant_create(
                slug=DEMO_SLUG,
                name="Demo Shop",
                phone_number_id="106540352242922",
                waba_id="102290129340398",
                display_phone_number="+15550783881",
            ).tenant
        return tenant

    def callbacks_to_receiver(self, tenant: Tenant) -> Receiver | None:
        """Point the demo tenant's callbacks at a receiver in this process — unless the user
        set a callback URL of their own, which is left as it is."""
        endpoint = endpoint_get(tenant=tenant)
        if endpoint.url and RECEIVER_PATH not in endpoint.url:
            self.stdout.write("Callbacks go to the URL you set (left as it is).")
            return None
        receiver = Receiver([])
        endpoint, _ = endpoint_configure(
            tenant=tenant, url=receiver.url, event_types=list(EVENT_TYPES)
        )
        receiver.verifiers = [Webhook(secret) for secret in active_secrets(endpoint)]
        return receiver

    def run_demo(
        self, port: int, count: int, no_serve: bool, env_path: Path, stop: threading.Event
    ) -> None:
        tenant = self.demo_tenant()
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
        receiver = self.callbacks_to_receiver(tenant)

        self.start_worker()
        self.start_deliverer(stop)
        base = f"http://127.0.0.1:{port}"
        threading.Thread(
            target=run,
            args=("127.0.0.1", port, get_internal_wsgi_application()),
            kwargs={"threading": True},
            name="http",
            daemon=True,
        ).start()
        self.wait_up(f"{base}/healthz")
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
        self.wait_settled(ids, tenant)
        self.print_table(ids)
        if receiver is not None:
            self.print_callbacks(receiver, tenant)

        write_env(env_path, {"WAYPOST": base, "KEY": raw_key})
        self.stdout.write(self.style.SUCCESS("\nWaypost demo is ready."))
        self.stdout.write(f"""
  Admin        {base}/admin/   (login admin / admin — demo only)
  API docs     {base}/api/docs/
  API          {base}/api/v1/   (a fresh key of the demo tenant in {shown(env_path)})

  In a second terminal:
    source {shown(env_path)}
    curl -sS "$WAYPOST/api/v1/messages?page_size=5" -H "Authorization: Bearer $KEY"
""")
        if not no_serve:
            self.stdout.write(
                f"Serving on {base} (the worker and the callback deliverer keep running). "
                "Ctrl-C stops."
            )
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

    @staticmethod
    def wait_settled(ids: list[str], tenant: Tenant, timeout: float = 60) -> None:
        """Until every message is final and the callbacks about them have gone out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = set(Message.objects.filter(pk__in=ids).values_list("state", flat=True))
            pending = CallbackEvent.objects.filter(
                tenant=tenant, status=CallbackStatus.PENDING
            ).exists()
            if states <= SETTLED and not pending:
                return
            time.sleep(0.2)

    def print_table(self, ids: list[str]) -> None:
        self.stdout.write(
            f"\n{'message':<10} {'to':<16} {'state':<10} {'attempts':>8}  {'wamid':<18} "
            f"{'error':<7} {'retried after':<14} status webhooks, as they arrived"
        )
        for m in Message.objects.filter(pk__in=ids).order_by("recipient"):
            # The errors of the attempts that were retried; the final one is the message's.
            retried = [
                str(e.detail["body"]["error"].get("code", ""))
                for e in m.events.filter(type="submit_responded").order_by("id")
                if isinstance(e.detail.get("body"), dict)
                and isinstance(e.detail["body"].get("error"), dict)
            ]
            if m.error_code and retried and retried[-1] == m.error_code:
                retried = retried[:-1]
            statuses = " ".join(
                t.removeprefix("status_")
                for t in m.events.filter(source="webhook")
                .order_by("recorded_at", "id")
                .values_list("type", flat=True)
            )
            self.stdout.write(
                f"{short(m.pk):<10} {mask_phone(m.recipient):<16} {m.state:<10} "
                f"{m.attempts:>8}  {(m.provider_message_id or '')[:16]:<18} "
                f"{m.error_code or '':<7} {' '.join(retried):<14} {statuses}"
            )
        summary = Counter(Message.objects.filter(pk__in=ids).values_list("state", flat=True))
        self.stdout.write("\nStates: " + ", ".join(f"{k} {v}" for k, v in summary.items()))

    def print_callbacks(self, receiver: Receiver, tenant: Tenant) -> None:
        with receiver.lock:
            received, refused = dict(receiver.received), receiver.refused
        pending = CallbackEvent.objects.filter(tenant=tenant, status=CallbackStatus.PENDING)
        line = ", ".join(f"{kind} {n}" for kind, n in sorted(received.items())) or "none"
        self.stdout.write(
            f"Callbacks: {sum(received.values())} signed callbacks received by the demo's "
            f"endpoint ({line})"
            + (f"; {refused} with a bad signature" if refused else "")
            + (f"; {pending.count()} still pending" if pending.exists() else "")
        )
