"""The Procfile stack as deployed, for benchmarks, fault injection and ``make stack``: web
(gunicorn), worker, beat and the callback deliverer — the production ``Procfile`` — with the
sandbox in place of Meta (``Procfile.sandbox``: the same entries and the sandbox), started with
honcho on production settings against the PostgreSQL and Redis that
``scripts/with-services.sh`` provides (each run gets its own database).

``start()`` runs the whole Procfile under one honcho (``make bench``, ``make stack``);
``start(separately=True)`` runs each entry's command itself (``bash -c "exec <command>"``, the
shell expanding ``${PORT}`` as honcho would) in a process group of its own, so that
``kill("worker")`` SIGKILLs that entry, pool children included — honcho would put each child
in a new session, out of reach of a group kill — and ``launch("worker")`` brings it back
(``make chaos``).

    with Stack(database="waypost_bench", env={"SANDBOX_DEFAULT_MPS": "0"}) as stack:
        key = stack.create_tenant("acme", mps=1000)["api_key"]
        requests.post(stack.url + "/api/v1/messages", ...)
        stack.sql("select count(*) from messaging_message")

Measurements are taken from outside, as a client would: HTTP to gunicorn, and SQL on the
database for the ledger's timestamps.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = "Procfile.sandbox"
WORKERS = ("worker", "express")  # the Procfile's Celery workers: launch() waits for "ready."
APP_SECRET = "bench-app-secret"
CONTROL_TOKEN = "bench"
# The template every benchmark sends, and a message body for it (Waypost's API format).
TEMPLATE = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."}],
}


def body(to: str, order: str) -> dict:
    return {
        "to": to,
        "template": {
            "name": "order_update",
            "language": "en_US",
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": order},
                    ],
                }
            ],
        },
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """``settings_module``: what ``DJANGO_SETTINGS_MODULE`` is set to, or None to leave it out
    (every process then runs the default, ``config/__init__.py``)."""

    def __init__(
        self,
        *,
        database: str,
        env: dict[str, str] | None = None,
        settings_module: str | None = "config.settings.production",
        web_port: int | None = None,
        sandbox_port: int | None = None,
        echo: bool = False,
    ) -> None:
        self.echo = echo  # print every process's output as it comes (make stack)
        if "DATABASE_URL" not in os.environ or "REDIS_URL" not in os.environ:
            raise SystemExit("run it with scripts/with-services.sh (or make bench)")
        base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
            conn.execute(f'CREATE DATABASE "{database}"')
        self.database_url = f"{base}/{database}"
        redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/2"
        self.web_port, self.sandbox_port = web_port or free_port(), sandbox_port or free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        venv_bin = str(Path(sys.executable).parent)
        inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        self.env = inherited | {
            "PATH": f"{venv_bin}:{os.environ['PATH']}",
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": "bench-" + "k" * 40,
            "CELERY_BROKER_URL": redis_url,
            "REDIS_URL": redis_url,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": "bench",
            "SECURE_SSL_REDIRECT": "False",
            "WEB_BIND": "127.0.0.1",  # a stack with the sandbox answers on this machine only
            "LOG_LEVEL": "WARNING",
            "PORT": str(self.web_port),
            "SANDBOX_PORT": str(self.sandbox_port),
            "SANDBOX_URL": self.sandbox_url,
            "SANDBOX_APP_SECRET": APP_SECRET,
            "SANDBOX_CONTROL_TOKEN": CONTROL_TOKEN,
            "WAYPOST_SANDBOX_PROVIDER": "true",
            "WAYPOST_METRICS_TOKEN": "bench-metrics",
            "SANDBOX_APPROVE_AFTER": "0",
            "SANDBOX_WEBHOOK_URL": f"{self.url}/webhooks/whatsapp",
            "CELERY_IMPORTS": "bench.tasks",
            **(env or {}),
        }
        if settings_module:
            self.env["DJANGO_SETTINGS_MODULE"] = settings_module
        self.log: deque[str] = deque(maxlen=2000)
        self.proc: subprocess.Popen | None = None
        self.procs: dict[str, subprocess.Popen] = {}  # start(separately=True): one per entry
        self.hosts: dict[str, int] = {}  # launch(host=...): each host's web port
        # Each Celery worker entry's "ready." line (honcho's "worker.1 | …", launch()'s
        # "worker@b | …"): start() and launch() return once the ones they started are ready.
        self.ready = {name: threading.Event() for name in WORKERS}
        self.session = requests.Session()

    # --- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        self.manage("migrate", "-v0")
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, *, separately: bool = False) -> None:
        """honcho start: returns once gunicorn answers and the worker is ready."""
        if separately:
            for name in procfile_entries():
                self.launch(name)
            return
        self.proc = self._honcho()
        self._wait_web(self.proc)
        for name, ready in self.ready.items():
            if name in procfile_entries() and not ready.wait(60):
                raise RuntimeError(f"the {name} did not start:\n" + "\n".join(list(self.log)[-60:]))

    def launch(self, name: str, *, timeout: float = 60, host: str = "") -> None:
        """Start one Procfile entry in its own process group; returns once it is ready (a
        worker: within ``timeout`` seconds). ``host``: as if on another machine — the entry
        ``name@host`` (``kill("web@b")``), a web on the host's own port (:meth:`host_url`), a
        worker under the Celery node name ``host@…`` (``WORKER_NAME``)."""
        key = f"{name}@{host}" if host else name
        if name in WORKERS:
            self.ready[name].clear()
        env = self.env
        if host:
            port = self.hosts.setdefault(host, free_port())
            env = self.env | {"PORT": str(port), "WORKER_NAME": host}
        proc = self.procs[key] = self._spawn(
            ["bash", "-c", f"exec {procfile_entries()[name]}"], prefix=f"{key} | ", env=env
        )
        if name == "web":
            self._wait(proc, f"{self.host_url(host)}/healthz")
        elif name in WORKERS and not self.ready[name].wait(timeout):
            raise RuntimeError(f"the {name} did not start:\n" + "\n".join(list(self.log)[-60:]))
        elif name == "sandbox":
            self._wait(proc, f"{self.sandbox_url}/_sandbox/ping")

    def host_url(self, host: str = "") -> str:
        """The web address of ``host``'s web process (``""``: the first one's, :attr:`url`)."""
        return f"http://127.0.0.1:{self.hosts[host]}" if host else self.url

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one entry's whole process group (honcho, the server, its children)."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def _honcho(self) -> subprocess.Popen:
        # -e /dev/null: the environment is this harness's alone (honcho's .env would override).
        return self._spawn(
            [sys.executable, "-m", "honcho", "-e", "/dev/null", "-f", PROCFILE, "start"]
        )

    def _spawn(self, args: list[str], prefix: str = "", env=None) -> subprocess.Popen:
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env or self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(proc, prefix), daemon=True).start()
        return proc

    def _wait_web(self, proc: subprocess.Popen) -> None:
        self._wait(proc, f"{self.url}/healthz")

    def _wait(self, proc: subprocess.Popen, url: str) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                if self.session.get(url, timeout=1).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the stack did not start:\n" + "\n".join(list(self.log)[-60:]))
            time.sleep(0.3)

    def _read(self, proc: subprocess.Popen, prefix: str = "") -> None:
        for line in proc.stdout:
            line = prefix + line
            self.log.append(line.rstrip())
            if self.echo:
                print(line, end="", flush=True)
            found = re.search(r"\b(worker|express)(\.\d+|@\S+)?\s*\|.*\bready\.", line)
            if found:
                self.ready[found.group(1)].set()

    def stop(self) -> None:
        """SIGTERM to each process started (honcho, or an entry's own process), as a process
        manager stops a service: a Celery worker or gunicorn then stops its children once their
        work is done. A signal to the whole group would reach a Celery pool process mid-task
        (``WorkerLostError``). A process still there after 30 s is SIGKILLed, its group with it."""
        procs = [self.proc, *self.procs.values()] if self.proc else list(self.procs.values())
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.proc, self.procs = None, {}

    # --- helpers -----------------------------------------------------------------------------

    def manage(self, *args: str) -> str:
        """``manage.py`` on the stack's settings; its output; ``CalledProcessError`` (which
        carries its stderr) when it fails, the stderr printed too."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr, flush=True)
            done.check_returncode()
        return done.stdout

    def create_tenant(self, slug: str, *, mps: int = 1000, token_env: str = "") -> dict:
        """A tenant for a load generator: its API is not throttled (``api_requests_per_second``
        0), as an operator would set it for a tenant sending in bulk — a batch costs one token
        per message, and the default 300/s would measure the throttle, not Waypost.
        ``token_env``: the variable its sandbox sender's token is read from."""
        args = ["create_tenant", slug, "--name", slug.title(), "--mps", str(mps)]
        if token_env:
            args += ["--access-token-env", token_env]
        created = json.loads(self.manage(*args))
        self.sql("UPDATE tenants_tenant SET api_requests_per_second = 0 WHERE slug = %s", [slug])
        return created

    def client(self, api_key: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {api_key}"
        return session

    def subscribe(self, session: requests.Session, url: str, events: list[str]) -> None:
        """Point the tenant of ``session`` (its API key) at a callback receiver."""
        answer = session.patch(
            f"{self.url}/api/v1/tenant", json={"callback_url": url, "callback_events": events}
        )
        assert answer.status_code == 200, answer.text

    def send_singles(self, session: requests.Session, prefix: str, count: int) -> list[str]:
        """``count`` single messages through the API, the Idempotency-Key of each its
        ``prefix`` and number, each answered 202 (asserted); their ids."""
        ids = []
        for i in range(count):
            answer = session.post(
                f"{self.url}/api/v1/messages",
                headers={"Idempotency-Key": f"{prefix}{i}"},
                json=body(f"+49151{len(prefix)}{i:07d}", f"{prefix}{i}"),
                timeout=30,
            )
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        return ids

    def count(self, state: str) -> int:
        """How many messages are in ``state`` (read from the database, as an auditor would)."""
        return self.sql("select count(*) from messaging_message where state = %s", [state])[0][0]

    def sql(self, query: str, params=None) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def sandbox(self, method: str, path: str, body=None) -> dict:
        response = self.session.request(
            method,
            self.sandbox_url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.env['SANDBOX_CONTROL_TOKEN']}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()


def postgres_version() -> str:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        return conn.execute("show server_version").fetchone()[0].split()[0]


def procfile_entries(name: str = PROCFILE) -> dict[str, str]:
    """A Procfile's entries, name → command, in its order."""
    lines = (ROOT / name).read_text().splitlines()
    entries = (line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))
    return {name.strip(): command.strip() for name, command in entries}


def main() -> None:
    """``make stack``: the production processes and the sandbox, on production settings and on
    the private PostgreSQL and Redis of ``scripts/with-services.sh``, until Ctrl-C. Prints an
    API key, an admin login and a first request to try."""
    import secrets

    # Stopped by SIGTERM (a timeout, a service manager) as by Ctrl-C: the processes go with it
    # (they run in sessions of their own, out of reach of a signal to this one's group).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    web_port = int(os.environ.get("PORT", "8000"))
    sandbox_port = int(os.environ.get("SANDBOX_PORT", "8025"))
    password = secrets.token_urlsafe(12)
    # Secrets of this run only (the harness's fixed ones are for benchmarks): the app secret the
    # sandbox signs with, the sandbox's control and API tokens, the key, the metrics token.
    app_secret, sender_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    stack = Stack(
        database="waypost_stack",
        web_port=web_port,
        sandbox_port=sandbox_port,
        env={
            "LOG_LEVEL": "INFO",
            "CELERY_IMPORTS": "",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "WHATSAPP_APP_SECRET": app_secret,
            "SANDBOX_APP_SECRET": app_secret,
            "SANDBOX_CONTROL_TOKEN": secrets.token_urlsafe(24),
            "WAYPOST_METRICS_TOKEN": secrets.token_urlsafe(24),
            "SANDBOX_TOKEN": sender_token,  # the sandbox's Meta routes take this token only
            "WAYPOST_ACME__SANDBOX_TOKEN": sender_token,
        },
        echo=True,
    )
    with stack:
        stack.manage("collectstatic", "--noinput", "-v0")
        subprocess.run(
            [sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", "admin",
             "--email", "admin@example.com"],
            cwd=ROOT, env=stack.env | {"DJANGO_SUPERUSER_PASSWORD": password}, check=True,
            capture_output=True,
        )  # fmt: skip
        key = stack.create_tenant("acme", token_env="WAYPOST_ACME__SANDBOX_TOKEN")["api_key"]
        stack.start()
        template = stack.client(key).post(f"{stack.url}/api/v1/templates", json=TEMPLATE).json()
        print(
            f"""
Waypost (production settings, Procfile.sandbox) on {stack.url}
  admin      {stack.url}/admin/  admin / {password}
  API key    {key}  (tenant acme, sender on the sandbox)
  template   {template.get("name")} {template.get("status")}
  sandbox    {stack.sandbox_url}  (control token: {stack.env["SANDBOX_CONTROL_TOKEN"]})
  metrics    {stack.url}/metrics  (token: {stack.env["WAYPOST_METRICS_TOKEN"]})
Try:
  curl -s -X POST {stack.url}/api/v1/messages -H "Authorization: Bearer {key}" \\
    -H "Idempotency-Key: try-1" -H "Content-Type: application/json" \\
    -d '{json.dumps(body("+4915112345678", "A-1"))}'
Ctrl-C stops everything (the database and Redis go with it).
""",
            flush=True,
        )
        try:
            while stack.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
