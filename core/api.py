"""The one API error shape, for every error the API returns (4xx, and a bug's 500).

``{"error": {"code": "template_param_count", "message": "...", "details": [...]}}``

DRF's own exceptions (authentication, parsing, serializer validation, 404, 405, throttling)
are reshaped here so clients parse one format. Serializer errors become ``details`` entries
``{"field": "template.name", "code": "required", "message": "..."}``.

A body key that the endpoint does not define is refused, not ignored (``RejectUnknownFields``):
``PATCH /api/v1/tenant`` with a misspelled setting would otherwise answer 200 and change
nothing. Such an answer's code is ``unknown_field`` and its message names every unknown key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError
from django.http import Http404, JsonResponse
from django.utils.log import log_response
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.db import is_transient
from core.errors import ValidationFailed, WaypostError, error_body

request_log = logging.getLogger("django.request")

# DRF's default codes are already stable snake_case; only these read better renamed.
_RENAMED_CODES = {"parse_error": "malformed_request", "throttled": "rate_limited"}


def flatten_errors(detail: Any, path: str = "") -> list[dict[str, Any]]:
    """Turn DRF's nested ``ErrorDetail`` structure into a flat list of field errors."""
    if isinstance(detail, dict):
        out: list[dict[str, Any]] = []
        for key, value in detail.items():
            sub = key if not path else f"{path}.{key}"
            if key == "non_field_errors":
                sub = path
            out.extend(flatten_errors(value, sub))
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                out.extend(flatten_errors(value, f"{path}[{index}]"))
            else:
                out.extend(flatten_errors(value, path))
        return out
    return [
        {"field": path or None, "code": getattr(detail, "code", "invalid"), "message": str(detail)}
    ]


UNKNOWN_FIELD = "unknown_field"


class RejectUnknownFields:
    """A serializer mixin: keys of the input that are not the serializer's writable fields are
    refused (one ``unknown_field`` error each, before any other check) instead of dropped."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            known = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(key) for key in data if key not in known)
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [
                            serializers.ErrorDetail(
                                f"'{name}' is not a field of this request.", code=UNKNOWN_FIELD
                            )
                        ]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


def validation_summary(details: list[dict[str, Any]]) -> tuple[str, str]:
    """The ``code`` and ``message`` of an answer made of these field errors: ``unknown_field``
    naming each unknown field when that is what they are; otherwise ``validation_error`` with
    the one error's message, or a general one."""
    if details and all(d["code"] == UNKNOWN_FIELD for d in details):
        names = ", ".join(f"'{d['field']}'" for d in details)
        return UNKNOWN_FIELD, f"Unknown field(s): {names}; the request was not applied."
    message = details[0]["message"] if len(details) == 1 else "The request is not valid."
    return "validation_error", message


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, WaypostError):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return Response({"error": exc.as_dict()}, status=exc.status, headers=headers)

    if isinstance(exc, RequestDataTooBig):  # Django's own limit on a body read into memory
        return Response(
            error_body("payload_too_large", "The request body is too large."), status=413
        )

    # DRF maps these two internally but keeps the original; map them first so the code is right.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return server_error(exc, context)

    if isinstance(exc, exceptions.ValidationError):
        details = flatten_errors(exc.detail)
        response.data = error_body(*validation_summary(details), details)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else ""
        code = getattr(detail, "code", None) or "error"
        response.data = error_body(_RENAMED_CODES.get(code, code), str(detail))
    return response


def server_error(exc: Exception, context: dict) -> Response | None:
    """A bug: the API's JSON 500 in every configuration — also with ``DEBUG`` on, where Django
    would answer its HTML traceback page (the exception is then named in ``details``). It is
    reported as Django reports an uncaught exception: ``got_request_exception`` (Sentry; the
    test client raises it in the test) and ``django.request``'s error log with the traceback.
    A transient database error is left to ``core.db.DatabaseUnavailableMiddleware`` (503)."""
    if isinstance(exc, DatabaseError) and is_transient(exc):
        return None
    request = context.get("request")
    request = getattr(request, "_request", request)
    signals.got_request_exception.send(sender=None, request=request)
    request_log.error(
        "Internal Server Error: %s",
        getattr(request, "path", "?"),
        exc_info=exc,
        extra={"status_code": 500, "request": request},
    )
    details = [{"exception": f"{type(exc).__name__}: {exc}"}] if settings.DEBUG else []
    response = Response(
        error_body("internal_error", "Internal error; it has been reported.", details), status=500
    )
    response._has_been_logged = True  # logged above, with the traceback Django's log would lack
    return response


def is_api_path(path: str) -> bool:
    """The paths whose every answer is JSON: the API's and the webhooks'."""
    return path.startswith("/api/") or path.startswith("/webhooks/")


def _bad_request_body(exception: Exception | None) -> dict:
    if isinstance(exception, DisallowedHost):
        return error_body("disallowed_host", "The Host header names a host this server is not.")
    return error_body("bad_request", "The request is malformed.")


def json_bad_request(request, exception=None) -> JsonResponse:
    """handler400 (a ``SuspiciousOperation`` or ``BadRequest`` outside DRF, a bad ``Host``):
    JSON under /api/ and /webhooks/, Django's page elsewhere. With ``DEBUG`` on Django answers
    its technical page instead of calling this: :class:`JsonHostCheckMiddleware` covers the
    bad ``Host`` there."""
    if is_api_path(request.path):
        return JsonResponse(_bad_request_body(exception), status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def json_permission_denied(request, exception=None) -> JsonResponse:
    """handler403 (a ``PermissionDenied`` outside DRF, which answers its own): JSON under
    /api/ and /webhooks/, Django's page elsewhere."""
    if is_api_path(request.path):
        message = "You do not have permission to perform this action."
        return JsonResponse(error_body("permission_denied", message), status=403)
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)


class JsonHostCheckMiddleware:
    """First in ``MIDDLEWARE``: a request to /api/ or /webhooks/ whose ``Host`` is not in
    ``ALLOWED_HOSTS`` is answered the JSON 400 (``disallowed_host``) here, logged as Django
    logs it (``django.security.DisallowedHost``). Without it Django raises on the first
    ``request.get_host()`` (``SecurityMiddleware``'s https redirect, ``CommonMiddleware``) and,
    with ``DEBUG`` on, answers its HTML technical page whatever ``handler400`` says."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if is_api_path(request.path_info):
            try:
                request.get_host()
            except DisallowedHost as exc:
                response = JsonResponse(_bad_request_body(exc), status=400)
                log_response(
                    str(exc),
                    exception=exc,
                    request=request,
                    response=response,
                    level="error",
                    logger=logging.getLogger("django.security.DisallowedHost"),
                )
                return response
        return self.get_response(request)


def json_not_found(request, exception=None) -> JsonResponse:
    """handler404 for the whole site: JSON under /api/, Django's page elsewhere."""
    if is_api_path(request.path):
        return JsonResponse(
            error_body("not_found", "No such endpoint."), status=status.HTTP_404_NOT_FOUND
        )
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_server_error(request) -> JsonResponse:
    """handler500: the API never returns an HTML error page."""
    if is_api_path(request.path):
        return JsonResponse(
            error_body("internal_error", "Internal error; it has been reported."), status=500
        )
    from django.views.defaults import server_error

    return server_error(request)


IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(request) -> str:
    """The request's ``Idempotency-Key`` header (400 ``idempotency_key_missing`` without one);
    its length and characters are the intake's to check (``core.openapi.idempotency_key``
    states them)."""
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if not key:
        raise ValidationFailed(
            f"The {IDEMPOTENCY_HEADER} header is required.",
            code="idempotency_key_missing",
            details=[{"field": IDEMPOTENCY_HEADER, "code": "required"}],
        )
    return key
