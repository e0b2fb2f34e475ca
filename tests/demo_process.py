"""``manage.py demo`` as a user runs it — a process of its own on free ports, its database and
``var/`` files in a directory of the test's — for the tests that check the demo and the
examples written against it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

from devtools.servers import ROOT, free_port

from .waiting import wait_for

# What the suite's environment sets for its own services: the demo runs on embedded defaults.
_NOT_FOR_THE_DEMO = ("DATABASE_URL", "CELERY_", "REDIS_URL", "SANDBOX_", "WAYPOST_")


class DemoProcess:
    """The demo, started; ``env`` is what ``var/demo.env`` defines once it is ready."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.port, self.sandbox_port = free_port(), free_port()
        self.environ = {
            k: v for k, v in os.environ.items() if not k.startswith(_NOT_FOR_THE_DEMO)
        } | {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": f"sqlite:///{var_dir / 'waypost.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
        }
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "demo",
                "--port",
                str(self.port),
                "--sandbox-port",
                str(self.sandbox_port),
                "--var-dir",
                str(var_dir),
            ],
            cwd=ROOT,
            env=self.environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def env_file(self) -> Path:
        return self.var_dir / "demo.env"

    def wait_ready(self, timeout: float = 120) -> dict[str, str]:
        """Until the demo serves (it writes ``demo.env`` last); the file's variables."""

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"the demo stopped:\n{self.output}")
            return self.env_file.exists() and any(
                line.startswith("Serving on ") for line in self.lines
            )

        wait_for(ready, timeout, f"the demo to serve:\n{self.output}", every=0.1)
        return self.env()

    def env(self) -> dict[str, str]:
        values = {}
        for line in self.env_file.read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = shlex.split(value)[0]
        return values

    def manage(self, *args: str) -> str:
        """``manage.py`` beside the demo (its database, its settings), as a user would."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def stop(self) -> None:
        """Ctrl-C: the demo stops its sandbox and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise
