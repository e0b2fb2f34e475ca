"""`make demo` runs `manage.py demo`: on the embedded defaults (SQLite, memory:// broker, a
worker thread, the sandbox) it sends a batch through the real pipeline and serves the API.
Checked as a user would: through that API, with the key the demo prints."""

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import requests

from devtools.servers import ROOT, free_port


def _start_demo(tmp_path, port: int) -> subprocess.Popen:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "CELERY_", "REDIS_URL", "SANDBOX_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
    }
    args = ["manage.py", "demo", "--port", str(port), "--sandbox-port", str(free_port())]
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until_ready(proc: subprocess.Popen, timeout: float = 180) -> str:
    output, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("the demo stopped:\n" + "".join(output))
        output.append(line)
        if line.startswith("Serving on "):
            return "".join(output)
    raise AssertionError("the demo did not get ready:\n" + "".join(output))


def test_the_demo_sends_a_batch_that_the_api_shows_delivered(tmp_path):
    port = free_port()
    proc = _start_demo(tmp_path, port)
    try:
        output = _read_until_ready(proc)
        key = re.search(r"API key\s+(\S+)", output).group(1)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"
        base = f"http://127.0.0.1:{port}/api/v1"
        messages = api.get(f"{base}/messages", params={"page_size": 100}, timeout=10).json()
        states = Counter(m["state"] for m in messages["results"])
        # Tracked past "accepted": the status webhooks came back through the demo's endpoint.
        assert sum(states.values()) == 12 and states["failed"] == 1, states
        assert set(states) <= {"delivered", "read", "failed"}, states
        failed = next(m for m in messages["results"] if m["state"] == "failed")
        assert failed["error"]["code"] == "131026"
        retried = [m for m in messages["results"] if m["attempts"] > 1]
        assert retried, "the sandbox fails a quarter of first submits: some were retried"
        detail = api.get(f"{base}/messages/{retried[0]['id']}", timeout=10).json()
        types = [e["type"] for e in detail["events"]]
        assert "retry_scheduled" in types and types.count("submit_started") >= 2
        assert "+4915112345" not in output  # recipients are masked in what the demo prints
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the demo stops its sandbox and exits
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
