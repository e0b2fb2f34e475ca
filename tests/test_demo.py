"""`make demo` runs `manage.py demo`: on the embedded defaults (SQLite, memory:// broker, a
worker and a callback deliverer in its process, the sandbox) it sends a batch through the real
pipeline and serves the API. Checked as a user would: what it prints, the `var/demo.env` it
writes, and its API with that key."""

import json
import re
import stat
import subprocess
from collections import Counter

import pytest
import requests

from devtools.management.commands.demo import DEMO_TEMPLATE
from devtools.servers import ROOT

from .demo_process import DemoProcess
from .waiting import wait_for

pytestmark = pytest.mark.system

# A log record ("2026-12-06 10:19:16,711 WARNING kombu…") or a request line ("[06/Dec/2026
# 10:19:16] "GET …"), as the demo's terminal showed them interleaved with its table.
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|\[\d\d/\w{3}/\d{4} )|Warning:|WARNING")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    process = DemoProcess(tmp_path_factory.mktemp("var"))
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def api_session(key: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    return session


def test_the_demo_sends_a_batch_that_the_api_shows_delivered(demo):
    env = demo.env()
    api, base = api_session(env["KEY"]), f"{env['WAYPOST']}/api/v1"
    messages = api.get(f"{base}/messages", params={"page_size": 100}, timeout=10).json()
    batch = [m for m in messages["results"] if m["metadata"].get("order", "").startswith("A-")]
    states = Counter(m["state"] for m in batch)
    # Tracked past "accepted": the status webhooks came back through the demo's endpoint.
    assert sum(states.values()) == 12 and states["failed"] == 1, states
    assert set(states) <= {"delivered", "read", "failed"}, states
    failed = next(m for m in batch if m["state"] == "failed")
    assert failed["error"]["code"] == "131026"
    retried = [m for m in batch if m["attempts"] > 1]
    assert retried, "the sandbox fails a quarter of first submits: some were retried"
    detail = api.get(f"{base}/messages/{retried[0]['id']}", timeout=10).json()
    types = [e["type"] for e in detail["events"]]
    assert "retry_scheduled" in types and types.count("submit_started") >= 2
    assert "+4915112345" not in demo.output  # recipients are masked in what the demo prints


def test_the_terminal_shows_the_demos_own_lines_and_the_logs_go_to_a_file(demo):
    log_lines = [line for line in demo.lines if LOG_LINE.search(line)]
    assert log_lines == [], "".join(log_lines)
    log = demo.var_dir / "demo.log"
    assert str(log) in demo.output
    logged = log.read_text()
    assert "waypost.state" in logged and '"POST /webhooks/whatsapp' in logged


def test_the_failed_row_shows_the_final_error_and_the_retried_one_beside_it(demo):
    header = next(line for line in demo.lines if line.startswith("message "))
    error_at, retried_at = header.index("error"), header.index("retried after")
    status_at = header.index("status webhooks")
    failed = [line for line in demo.lines if line[:error_at].split()[2:3] == ["failed"]]
    assert len(failed) == 1, demo.output
    assert failed[0][error_at:retried_at].strip() == "131026", failed[0]
    # The sandbox answers 131016 at random (25 %): the failed one may have been retried once
    # or more before its final error, each retry's error shown.
    assert set(failed[0][retried_at:status_at].split()) <= {"131016"}, failed[0]
    retried = [line for line in demo.lines if "131016" in line[retried_at:status_at].split()]
    assert retried, "the retried messages show the error they were retried after"


def test_demo_env_is_private_and_defines_the_url_and_a_working_key(demo):
    assert stat.S_IMODE(demo.env_file.stat().st_mode) == 0o600
    lines = demo.env_file.read_text().splitlines()
    assert [line.split("=")[0] for line in lines] == ["export WAYPOST", "export KEY"]
    assert f"source {demo.env_file}" in demo.output
    done = subprocess.run(
        [
            "bash",
            "-c",
            f"set -eu; source {demo.env_file}; curl -sS --fail-with-body "
            '-H "Authorization: Bearer $KEY" "$WAYPOST/api/v1/tenant"',
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["slug"] == "demo"


def test_callbacks_are_delivered_to_the_demos_endpoint_and_its_status_says_so(demo):
    received = re.search(r"Callbacks: (\d+) signed callbacks received", demo.output)
    assert received and int(received.group(1)) >= 12, demo.output
    assert "bad signature" not in demo.output and "still pending" not in demo.output
    env = demo.env()
    settings = api_session(env["KEY"]).get(f"{env['WAYPOST']}/api/v1/tenant", timeout=10).json()
    assert settings["callback_enabled"] and settings["callback_failures"] == 0, settings
    assert settings["callback_last_success_at"], settings


def test_a_tenant_added_while_the_demo_runs_gets_its_messages_sent(demo):
    """The demo's worker consumes every tenant's queue, also one made after it started."""
    created = json.loads(demo.manage("create_tenant", "second", "--name", "Second Shop"))
    env = demo.env()
    api, base = api_session(created["api_key"]), f"{env['WAYPOST']}/api/v1"
    template = api.post(f"{base}/templates", json=DEMO_TEMPLATE, timeout=10)
    assert template.status_code == 201, template.text
    template_url = f"{base}/templates/{template.json()['id']}"
    wait_for(
        lambda: api.get(template_url, timeout=10).json()["status"] == "APPROVED",
        30,
        "the sandbox to approve the second tenant's template",
    )
    body = {
        "to": "+4915112349999",
        "template": {
            "name": "order_update",
            "language": "en_US",
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "B-1"}]},
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": t} for t in ("Ana", "B-1", "today")],
                },
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": [{"type": "text", "text": "B-1"}],
                },
            ],
        },
    }
    sent = api.post(
        f"{base}/messages", json=body, headers={"Idempotency-Key": "second-1"}, timeout=10
    )
    assert sent.status_code == 202, sent.text
    message_url = f"{base}/messages/{sent.json()['id']}"
    wait_for(
        lambda: api.get(message_url, timeout=10).json()["state"] in ("delivered", "read"),
        30,
        "the second tenant's message to be sent and delivered",
    )


def test_make_demo_moves_both_ports():
    done = subprocess.run(
        ["make", "-n", "demo", "PORT=8100", "SANDBOX_PORT=8125"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "--port 8100" in done.stdout and "--sandbox-port 8125" in done.stdout, done.stdout
