"""Recorded provider answers to a media upload, one file each, and a transport that plays them.

Each file is ``{"source": <the provider's documentation page>, "note": ..., "status": <HTTP
status>, "payload": <the body>}`` (the shape of ``tests/fixtures/meta``, with the status the
answer comes with). :class:`Recorded` is a ``requests`` transport adapter: mounted on a
provider's pooled session for one URL prefix, it answers every request there with a recorded
answer (or raises a transport error) and keeps what it was sent — no network, no server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import requests
from requests.adapters import BaseAdapter, HTTPAdapter

HERE = Path(__file__).resolve().parent
#: An answer that is the real server's: the request goes out over the network.
REAL = "<the real server>"


@cache
def _load(name: str) -> dict:
    return json.loads((HERE / f"{name}.json").read_text())


def answer(name: str) -> tuple[int, object]:
    """(HTTP status, body) of the recorded answer ``<name>.json``."""
    recorded = _load(name)
    return recorded["status"], json.loads(json.dumps(recorded["payload"]))


@dataclass
class Sent:
    """One request as it left: method, URL, headers and the multipart body's fields."""

    method: str
    url: str
    headers: dict
    body: bytes

    def field(self, name: str) -> bytes:
        """The value of the multipart field ``name`` (its part's bytes after the headers)."""
        boundary = self.headers["Content-Type"].split("boundary=", 1)[1].encode()
        for part in self.body.split(b"--" + boundary):
            head, _, value = part.partition(b"\r\n\r\n")
            if f'name="{name}"'.encode() in head:
                return value.removesuffix(b"\r\n")
        raise KeyError(name)

    def part_headers(self, name: str) -> bytes:
        boundary = self.headers["Content-Type"].split("boundary=", 1)[1].encode()
        for part in self.body.split(b"--" + boundary):
            head, _, _value = part.partition(b"\r\n\r\n")
            if f'name="{name}"'.encode() in head:
                return head
        raise KeyError(name)


@dataclass
class Recorded(BaseAdapter):
    """Answers with ``answers`` in turn (the last one repeats): each a recorded answer's name,
    a ``(status, body)`` pair, an exception to raise as the transport's, or :data:`REAL` (the
    request goes to the real server)."""

    answers: list = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        self.sent.append(Sent(request.method, request.url, dict(request.headers), body))
        item = self.answers[min(len(self.sent), len(self.answers)) - 1]
        if isinstance(item, Exception):
            raise item
        if item == REAL:
            return HTTPAdapter(max_retries=0).send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
        status, payload = answer(item) if isinstance(item, str) else item
        response = requests.Response()
        response.status_code = status
        response.url = request.url
        response.request = request
        if isinstance(payload, dict | list):
            response._content = json.dumps(payload).encode()
            response.headers["Content-Type"] = "application/json"
        else:
            response._content = str(payload).encode()
            response.headers["Content-Type"] = "text/html"
        return response

    def close(self) -> None:
        """Nothing to close."""
