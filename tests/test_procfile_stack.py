"""The real stack — the production Procfile's processes and the sandbox (``Procfile.sandbox``),
started with honcho the way ``make stack`` and the README start them — against the test run's
PostgreSQL and Redis, **without** ``DJANGO_SETTINGS_MODULE``: every process must pick the same
(production) settings by itself, say so in its start line, and keep its coordination state in
the shared Redis. Then a template is approved by the sandbox, a message goes all the way to
`read` through signed webhooks, and the admin, its static files and /metrics are served."""

import re

import pytest
import requests

from devtools.stack import TEMPLATE, Stack, body

from .waiting import wait_for

pytestmark = pytest.mark.system

PROCESSES = ("web", "worker", "beat", "callbacks")


def test_procfile_stack_without_the_settings_variable_runs_production_everywhere(tmp_path):
    stack = Stack(
        database="waypost_stack",
        settings_module=None,  # left out, as a PaaS or systemd unit might
        env={"LOG_LEVEL": "INFO", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "CELERY_IMPORTS": ""},
    )
    with stack:
        stack.manage("collectstatic", "--noinput", "-v0")
        key = stack.create_tenant("stack")["api_key"]
        stack.start()
        session = stack.client(key)
        started = {
            name: wait_for(
                lambda name=name: [
                    line for line in list(stack.log) if f"waypost {name} (pid" in line
                ],
                30,
                f"the {name} start line",
            )
            for name in PROCESSES
        }
        for lines in started.values():
            for line in lines:
                assert "settings config.settings.production (production)" in line, line
                assert "coordination redis (redis://127.0.0.1:" in line, line

        template = session.post(f"{stack.url}/api/v1/templates", json=TEMPLATE, timeout=10)
        assert template.json()["status"] == "APPROVED", template.text
        message = session.post(
            f"{stack.url}/api/v1/messages",
            headers={"Idempotency-Key": "s1"},
            json=body("+4915112345678", "A-1"),
            timeout=10,
        ).json()
        wait_for(
            lambda: (
                session.get(f"{stack.url}/api/v1/messages/{message['id']}", timeout=10).json()[
                    "state"
                ]
                == "read"
            ),
            60,
            "the message to be read",
        )
        # The worker recorded `read`; gunicorn's /metrics adds up every process's counters, for
        # the holder of the token only.
        assert requests.get(f"{stack.url}/metrics", timeout=10).status_code == 403
        metrics = requests.get(
            f"{stack.url}/metrics",
            headers={"Authorization": f"Bearer {stack.env['WAYPOST_METRICS_TOKEN']}"},
            timeout=10,
        )
        assert metrics.status_code == 200
        assert re.search(r'waypost_message_state_changes_total\{[^}]*state="read"', metrics.text)
        assert requests.get(f"{stack.url}/admin/login/", timeout=5).status_code == 200
        assert requests.get(f"{stack.url}/static/admin/css/base.css", timeout=5).ok
        # The sandbox's control endpoints are closed to anyone without its token.
        assert requests.get(f"{stack.sandbox_url}/_sandbox/messages", timeout=5).status_code == 401
        # While it ran (honcho's stop signals each process group: a Celery pool process busy
        # at that moment dies with a WorkerLostError, which says nothing about the stack).
        output = "\n".join(stack.log)
    assert "Traceback" not in output, output[-3000:]
