"""The real stack from the Procfile (web on gunicorn, worker, beat, sandbox), started with
honcho on production settings against the test run's PostgreSQL and Redis: a template is
approved by the sandbox, a message goes all the way to `read` through signed webhooks, and
the admin and its static files are served."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import requests

from devtools.servers import ROOT, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_env(tmp_path):
    metrics_dir = tmp_path / "metrics"
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS waypost_stack")
        conn.execute("CREATE DATABASE waypost_stack")
    web, sandbox = free_port(), free_port()
    # Its own Redis database: the session's test worker must not consume this stack's queues
    # (kombu prefixes broadcast channels with the database number too).
    redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/1"
    venv_bin = str(Path(sys.executable).parent)
    return os.environ | {
        "PATH": f"{venv_bin}:{os.environ['PATH']}",  # what activating the venv does
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": base + "/waypost_stack",
        "SECRET_KEY": "stack-" + "k" * 40,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "WHATSAPP_APP_SECRET": "stack-secret",
        "WHATSAPP_VERIFY_TOKEN": "stack",
        "SECURE_SSL_REDIRECT": "False",
        "PORT": str(web),
        "SANDBOX_PORT": str(sandbox),
        "SANDBOX_URL": f"http://127.0.0.1:{sandbox}",
        "SANDBOX_APPROVE_AFTER": "0",
        "SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{web}/webhooks/whatsapp",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }


def manage(env, *args) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


def test_procfile_stack_sends_a_message_to_read(stack_env):
    manage(stack_env, "migrate", "-v0")
    manage(stack_env, "collectstatic", "--noinput", "-v0")
    key = json.loads(manage(stack_env, "create_tenant", "stack", "--name", "Stack"))["api_key"]
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start"],
        cwd=ROOT,
        env=stack_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{stack_env['PORT']}"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    failed = True
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if session.get(f"{url}/healthz", timeout=1).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # still booting
            assert time.monotonic() < deadline and honcho.poll() is None, "the stack did not start"
            time.sleep(0.3)
        time.sleep(3)  # the worker and the sandbox start alongside web
        template = session.post(
            f"{url}/api/v1/templates",
            json={
                "name": "hello",
                "language": "en_US",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hi {{1}}, welcome."}],
            },
            timeout=10,
        ).json()
        assert template["status"] == "APPROVED", template
        message = session.post(
            f"{url}/api/v1/messages",
            headers={"Idempotency-Key": "s1"},
            json={
                "to": "+4915112345678",
                "template": {
                    "name": "hello",
                    "language": "en_US",
                    "components": [
                        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}
                    ],
                },
            },
            timeout=10,
        ).json()
        deadline = time.monotonic() + 60
        while (
            state := session.get(f"{url}/api/v1/messages/{message['id']}", timeout=10).json()[
                "state"
            ]
        ) != "read":
            assert time.monotonic() < deadline, f"stuck in {state}"
            time.sleep(0.3)
        # The worker recorded `read`; gunicorn's /metrics adds up every process's counters.
        metrics = session.get(f"{url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert re.search(r'waypost_message_state_changes_total\{[^}]*state="read"', metrics.text)
        assert session.get(f"{url}/admin/login/", timeout=5).status_code == 200
        assert session.get(f"{url}/static/admin/css/base.css", timeout=5).status_code == 200
        failed = False
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        output, _ = honcho.communicate(timeout=30)
        if failed:
            Path("/tmp/stack-honcho.log").write_text(output)
    assert "Traceback" not in output, output[-3000:]
    # Isolated from the session's test worker (which would otherwise take this stack's tasks).
    assert re.search(r"transport:\s+redis://\S+/1\b", output), output[:3000]
