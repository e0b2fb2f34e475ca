"""Callback receivers that misbehave on purpose: a raw TCP server on 127.0.0.1 that reads each
HTTP request and answers with whatever bytes, at whatever pace, a test tells it to."""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    line: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.time() when it was read


@dataclass
class Hostile:
    """``answer(server, conn, request, index)`` writes the response; it returns True to keep
    the connection open for the next request. ``sent`` counts the body bytes the server managed to
    hand to the kernel."""

    answer: Callable[[Hostile, socket.socket, Request, int], bool]
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    sni: list[str | None] = field(default_factory=list)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.stopped = threading.Event()
        if self.tls is not None:
            self.tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.server.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            reader = conn.makefile("rb")
            while not self.stopped.is_set():
                line = reader.readline(65536)
                if not line:
                    return
                headers = {}
                while (header := reader.readline(65536)) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", 0)))
                request = Request(line.decode("latin-1").strip(), headers, body, time.time())
                with self.lock:
                    self.requests.append(request)
                    index = len(self.requests) - 1
                if not self.answer(self, conn, request, index):
                    return
        except (OSError, ValueError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def send(self, conn: socket.socket, data: bytes, chunk: int = 16 * 1024) -> None:
        """Send ``data`` counting what was handed over, until the client goes away."""
        for start in range(0, len(data), chunk):
            conn.sendall(data[start : start + chunk])
            with self.lock:
                self.sent += len(data[start : start + chunk])


def head(status: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def ok(body: bytes = b"ok") -> Callable:
    def answer(server, conn, request, index) -> bool:
        conn.sendall(head("200 OK", {"Content-Length": str(len(body))}) + body)
        return True

    return answer


@functools.cache
def gzip_bomb() -> bytes:
    """About 1 MB of gzip that inflates to 1 GiB of zeros: 1024 gzip members of 1 MiB each (a
    client decoding gzip reads every member, as urllib3 does)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = packer.compress(bytes(1 << 20)) + packer.flush()
    return member * 1024


def bomb(status: str = "200 OK") -> Callable:
    """The gzip bomb, announced with its ``Content-Length``, after ``status``."""

    def answer(server, conn, request, index) -> bool:
        data = gzip_bomb()
        headers = {
            "Content-Type": "text/plain",
            "Content-Encoding": "gzip",
            "Content-Length": str(len(data)),
        }
        conn.sendall(head(status, headers))
        server.send(conn, data)
        return False

    return answer


def trickle_headers(interval: float, stop: threading.Event) -> Callable:
    """A status line, then a header one byte per ``interval``, never finished."""

    def answer(server, conn, request, index) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not stop.wait(interval):
            conn.sendall(b"a")
        return False

    return answer
