"""The lean path of a hot endpoint: the plain request answered without DRF's machinery.

``POST /api/v1/messages`` is the request Waypost serves most; DRF's per-request work around it
(its request wrapper, authentication, permission and throttle classes, parser and content
negotiation, the exception handler, the renderer) cost as much as the send itself (issue 21,
``bench/NOTES.md``). :func:`lean` puts a function in front of a DRF view with the rules:

* **The plain case only.** The lean function answers the request it can answer completely —
  authenticated, JSON, valid — and returns ``None`` for anything else *before any side
  effect*; the DRF view then answers as it always has. Every error, status, header and the
  OpenAPI schema stay DRF's (the view class is what drf-spectacular reads).
* **The same answer.** What the lean function returns is what the DRF view would: the same
  body (DRF's renderer), status and headers (``Allow``; with one renderer, no ``Vary``).
  ``tests/messaging/test_lean_path.py`` sends each case both ways and compares.
* **Errors after a side effect** (a throttle token spent) are answered by the lean function
  with the API's one error shape, as ``core.api.exception_handler`` would.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.utils import json as drf_json

from core.errors import WaypostError
from core.parsers import unstorable

_renderer = JSONRenderer()


def lean(view: Callable, handler: Callable[[HttpRequest], HttpResponse | None], methods: set[str]):
    """``view`` (a DRF ``as_view()``) with ``handler`` tried first for ``methods``."""

    @functools.wraps(view)
    def dispatch(request, *args, **kwargs):
        if request.method in methods:
            response = handler(request)
            if response is not None:
                return response
        return view(request, *args, **kwargs)

    dispatch.drf = view  # the DRF view alone (tests compare the two answers)
    return dispatch


def bearer(request: HttpRequest) -> str | None:
    """The ``Authorization: Bearer <key>`` value, or None."""
    scheme, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    raw = raw.strip()
    return raw if scheme == "Bearer" and raw else None


def json_accepted(request: HttpRequest) -> bool:
    """Whether the client takes DRF's plain JSON: no ``Accept``, ``*/*`` or exactly
    ``application/json`` (DRF's negotiation answers anything else — a 406, indented JSON)."""
    accept = request.META.get("HTTP_ACCEPT", "").strip()
    return accept in ("", "*/*", "application/json")


def json_object(request: HttpRequest) -> dict | None:
    """The body as a JSON object when it is one DRF's parser would take as it is
    (``application/json``, UTF-8, storable: ``core.parsers``), else None."""
    content_type = request.META.get("CONTENT_TYPE", "")
    media, _, params = content_type.partition(";")
    if media.strip() != "application/json" or (params and "utf-8" not in params.lower()):
        return None
    try:  # DRF's strict loads: no NaN or Infinity
        data = drf_json.loads(request.body.decode("utf-8"))
    except (ValueError, RecursionError, RequestDataTooBig):  # DRF answers each its way
        return None
    if not isinstance(data, dict) or unstorable(data):
        return None
    return data


def respond(data, status: int, *, allow: str, headers: dict | None = None) -> HttpResponse:
    """What DRF's ``Response`` becomes after its view finalised and rendered it."""
    response = HttpResponse(_renderer.render(data), status=status, content_type="application/json")
    response["Allow"] = allow
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error(exc: WaypostError, *, allow: str) -> HttpResponse:
    """``core.api.exception_handler``'s answer to a ``WaypostError``."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return respond({"error": exc.as_dict()}, exc.status, allow=allow, headers=headers)
