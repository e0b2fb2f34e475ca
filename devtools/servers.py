"""Real servers for integration tests: the sandbox as its own process, a webhook sink thread."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from sandbox.server import FIXED_AT_START

ROOT = Path(__file__).resolve().parents[1]
APP_SECRET = "sandbox-test-secret"
CONTROL_TOKEN = "sandbox-control-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, what: str, timeout: float = 20, *, every: float = 0.1) -> None:
    """Poll ``condition()`` until it is true; RuntimeError naming ``what`` after ``timeout``
    seconds (a server's start: its port answering, a replica in sync)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Sink:
    """Collects webhook POSTs; ``fail_next`` answers that many with 500 first."""

    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.deliveries.clear()
            self.fail_next = 0

    def statuses(self) -> list[dict]:
        with self.lock:
            deliveries = list(self.deliveries)
        return [
            status
            for d in deliveries
            for entry in d.json.get("entry", [])
            for change in entry["changes"]
            for status in change["value"].get("statuses", [])
        ]

    def wait_for(self, predicate, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [d for d in self.deliveries if predicate(d)]
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError("no matching webhook arrived")


def start_sink() -> tuple[Sink, ThreadingHTTPServer]:
    port = free_port()
    sink = Sink(url=f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with sink.lock:
                failing = sink.fail_next > 0
                if failing:
                    sink.fail_next -= 1
                else:
                    sink.deliveries.append(Delivery(dict(self.headers), body))
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return sink, server


class SandboxProcess:
    """``python -m sandbox`` in a subprocess, reset between tests through its own API."""

    def __init__(self, webhook_url: str, **flags) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(self.port),
            "--webhook-url",
            webhook_url,
            "--app-secret",
            APP_SECRET,
            "--control-token",
            CONTROL_TOKEN,
        ]
        for name, value in flags.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {CONTROL_TOKEN}"
        for _ in range(200):
            try:
                self.session.get(f"{self.url}/_sandbox/ping", timeout=0.5)
                break
            except requests.ConnectionError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode()) from None
                time.sleep(0.05)
        self.defaults = self.get("/_sandbox/config").json()

    def get(self, path: str, **kw) -> requests.Response:
        return self.session.get(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def post(self, path: str, json_body=None, **kw) -> requests.Response:
        return self.session.post(
            self.url + path, json=json_body, timeout=kw.pop("timeout", 10), **kw
        )

    def configure(self, **changes) -> dict:
        response = self.post("/_sandbox/config", changes)
        assert response.status_code == 200, response.text
        return response.json()

    def restore(self) -> None:
        defaults = {  # secrets are masked; some settings are fixed at start
            k: v for k, v in self.defaults.items() if v != "***" and k not in FIXED_AT_START
        }
        self.configure(**defaults, app_secret=APP_SECRET)
        self.post("/_sandbox/reset", {"everything": True})

    def wait_idle(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.get("/_sandbox/stats").json()
            if stats["webhooks"]["pending"] == 0:
                return stats
            time.sleep(0.05)
        raise AssertionError("sandbox webhooks did not drain")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@dataclass
class Receiver:
    """A client app's callback endpoint: records every POST (with the time it answered), and
    behaves as told — ``fail_first`` answers 503 that many times, ``delay`` sleeps first.
    ``arrived`` counts the POSTs as they come in, before any delay (a request in flight)."""

    url: str
    requests: list[tuple[float, dict, bytes, int]] = field(default_factory=list)
    arrived: int = 0
    fail_first: int = 0
    delay: float = 0.0
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[tuple[float, dict, bytes]]:
        with self.lock:
            return [(t, h, b) for t, h, b, code in self.requests if 200 <= code < 300]


def start_receiver(**behaviour) -> tuple[Receiver, ThreadingHTTPServer]:
    port = free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}/callbacks", **behaviour)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.arrived += 1
            if receiver.delay:
                time.sleep(receiver.delay)
            with receiver.lock:
                code = receiver.status
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    code = 503
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with receiver.lock:
                receiver.requests.append((time.time(), dict(self.headers), body, code))

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server
