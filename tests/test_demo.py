"""`make demo` runs `manage.py demo`: on the embedded defaults (SQLite, memory:// broker, a
worker thread, the sandbox) it sends a batch through the real pipeline."""

import os
import re
import subprocess
import sys

from devtools.servers import ROOT, free_port


def test_demo_sends_a_batch_on_embedded_defaults(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "CELERY_", "REDIS_URL", "SANDBOX_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "demo",
            "--no-serve",
            "--port",
            str(free_port()),
            "--sandbox-port",
            str(free_port()),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Template order_update: APPROVED by the sandbox" in result.stdout
    # Tracked past "accepted": the status webhooks came back through our own endpoint.
    states = re.search(r"^States: (.*)$", result.stdout, re.MULTILINE).group(1)
    counts = {name: int(n) for n, name in (part.split(" ")[::-1] for part in states.split(", "))}
    assert sum(counts.values()) == 12 and counts["failed"] == 1, states
    assert set(counts) <= {"delivered", "read", "failed"}, states
    assert re.search(r"\s[2-5]\s+wamid\.\S+\s+131016\s", result.stdout)  # a retried one
    assert "+4915112345" not in result.stdout  # recipients are masked
