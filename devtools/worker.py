"""A real Celery worker process for integration tests, on the test database and Redis."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import deque

from django.conf import settings
from django.db import connection

from devtools.servers import ROOT


def worker_env(sandbox_url: str, **extra: str) -> dict[str, str]:
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "SANDBOX_URL": sandbox_url,
        "CELERY_VISIBILITY_TIMEOUT": "4",
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        # A worker SIGKILLed while it looked for such tasks leaves kombu's lock behind: every
        # other worker's redelivery waits for it to expire (300 s by default).
        "CELERY_UNACKED_MUTEX_EXPIRE": "2",
        # A countdown longer than the visibility timeout would be redelivered every few
        # seconds until due (kombu restores unacked ETA tasks; core.checks E006 refuses it).
        "WAYPOST_COUNTDOWN_MAX": "3",
        "WAYPOST_PROVIDER_READ_TIMEOUT": "1.5",
        "WAYPOST_SUBMIT_STUCK_AFTER": "3",
        # No sweep may hide a message the normal path left behind.
        "WAYPOST_REDRIVE_AFTER": "3600",
        **extra,
    }


class Worker:
    """``celery -A config worker`` as a subprocess; ``kill()`` sends SIGKILL to all of it."""

    def __init__(
        self, env: dict[str, str], *, pool: str = "prefork", concurrency: int = 2, name: str = "w1"
    ) -> None:
        self.options = {"env": env, "pool": pool, "concurrency": concurrency, "name": name}
        self.log: deque[str] = deque(maxlen=400)
        self.ready = threading.Event()
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "info",
        ]
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(60):
            self.stop()
            raise RuntimeError("worker did not start:\n" + "\n".join(self.log))

    def restart(self) -> None:
        self.stop()
        self.__init__(**self.options)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.log.append(line.rstrip())
            if " ready." in line:
                self.ready.set()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            # The whole group: a SIGKILLed child may have orphans.
            self.kill()

    def wait_dead(self, timeout: float = 60) -> None:
        """Until the worker has died (a crash point fired); else AssertionError with its log.
        A first task on a machine busy with the whole suite can take tens of seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return
            time.sleep(0.1)
        raise AssertionError("worker did not die:\n" + "\n".join(list(self.log)[-40:]))


class Beat:
    """``celery -A config beat`` as a subprocess, reading the test database's schedule."""

    def __init__(self, env: dict[str, str]) -> None:
        self.log: deque[str] = deque(maxlen=400)
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(60):
            self.stop()
            raise RuntimeError("beat did not start:\n" + "\n".join(self.log))

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.log.append(line.rstrip())
            if "beat: Starting" in line:
                self.ready.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, 9)


class CallbackDeliverer:
    """``manage.py deliver_callbacks`` as a subprocess; ``kill()`` is SIGKILL."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "deliver_callbacks", "--threads", "4"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 9)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
