"""Input the database or the JSON layer cannot take, refused as a 400 at the door — never a
500 further in: bodies nested too deep, NUL characters, lone surrogates.

Kept apart from ``core.api`` because DRF imports the parser classes named in its settings
while ``rest_framework.views`` is being imported.
"""

from __future__ import annotations

import math
from typing import Any

from django.http import JsonResponse
from rest_framework import exceptions, parsers

MAX_JSON_DEPTH = 32


def unstorable(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str:
    """Why ``value`` (parsed JSON) cannot be stored, or "" when it can: nesting deeper than
    ``max_depth``, a NUL character (PostgreSQL refuses it in text and JSONB), a lone UTF-16
    surrogate (not encodable as UTF-8), or a number beyond a float (``1e400`` parses as
    infinity, which JSONB refuses). Iterative: no recursion limit to hit."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        if isinstance(item, dict):
            stack.extend((k, depth) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float) and not math.isfinite(item):
            return "a number is not finite (JSON has no Infinity or NaN)"
        elif isinstance(item, str):
            if "\x00" in item:
                return "a string contains a NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a string contains a lone surrogate (not valid Unicode)"
    return ""


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing what would otherwise fail later as a 500: bodies nested too
    deep for Python's parser (RecursionError) or for us, NUL characters, lone surrogates."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
        problem = unstorable(data)
        if problem:
            raise exceptions.ParseError(f"JSON parse error - {problem}.")
        return data


class BoundedMultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, refusing a body that announces more than the setting
    ``limit_setting`` allows (bytes, plus :data:`ENVELOPE` for boundaries, part headers and the
    other fields) before reading any of it: an upload is otherwise written whole to a
    temporary file before the view can say no. The refusal is a 413 with the endpoint's
    ``code``, naming the form ``field``."""

    limit_setting = "WEBHOOK_MAX_BYTES"
    code = "payload_too_large"
    field = "file"

    def parse(self, stream, media_type=None, parser_context=None):
        from django.conf import settings

        from core.errors import PayloadTooLarge

        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        limit = getattr(settings, self.limit_setting)
        if length and str(length).isdigit() and int(length) > limit + ENVELOPE:
            raise PayloadTooLarge(
                f"The request is {int(length)} bytes; the file may be at most {limit} bytes "
                f"({self.limit_setting}).",
                code=self.code,
                details=[{"field": self.field, "code": "too_large", "max_bytes": limit}],
            )
        return super().parse(stream, media_type, parser_context)


# The multipart envelope around an uploaded file: boundaries, part headers, the other fields.
ENVELOPE = 64 * 1024


class RejectUnstorableQueryMiddleware:
    """A query parameter with a NUL character under /api/ is a 400 ``malformed_request``
    (PostgreSQL cannot compare text with NUL: it would be a 500)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and any(
            "\x00" in key or "\x00" in value
            for key, values in request.GET.lists()
            for value in values
        ):
            from core.errors import error_body

            return JsonResponse(
                error_body("malformed_request", "A query parameter contains a NUL character."),
                status=400,
            )
        return self.get_response(request)
