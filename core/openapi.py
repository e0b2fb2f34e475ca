"""The API's error answers, in the OpenAPI schema: every operation documents the statuses it can
answer besides its success — all in the one error shape (``core.api``) — so a client generated
from ``/api/schema/`` (or a schema-driven fuzzer) knows them.

A drf-spectacular postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``)."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error the API answers has this shape; `code` is stable.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                },
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

# status → (description, applies to the operation?)
ERRORS: dict[str, tuple[str, Any]] = {
    "400": ("The request is not valid (`details` names each problem).", lambda p, m: True),
    "401": ("Missing, invalid or revoked API key; inactive tenant.", lambda p, m: True),
    "404": ("No such object for this tenant.", lambda p, m: "{" in p),
    "409": (
        "The Idempotency-Key was used with another body, or the object's state forbids it.",
        lambda p, m: m in ("post", "patch"),
    ),
    "413": ("The body is too large.", lambda p, m: m in ("post", "patch", "put")),
    "415": ("The body is not JSON.", lambda p, m: m in ("post", "patch", "put")),
    "429": (
        "The tenant's API rate is exceeded: retry after `Retry-After` seconds.",
        lambda p, m: True,
    ),
    "502": (
        "The provider refused (credentials, permissions): an operator must act.",
        lambda p, m: p.endswith("/sync"),
    ),
    "503": (
        "Briefly unavailable (database, provider): retry after `Retry-After` seconds.",
        lambda p, m: True,
    ),
}
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before retrying.",
    }
}


def error_responses(result: dict, generator, request, public) -> dict:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, (description, applies) in ERRORS.items():
                if status in responses or not applies(path, method):
                    continue
                responses[status] = {
                    "description": description,
                    "content": {"application/json": {"schema": ref}},
                    **({"headers": RETRY_AFTER} if status in ("429", "503") else {}),
                }
    return result


def paginated(item_serializer):
    """The schema of a cursor-paginated list of ``item_serializer`` objects, for
    ``@extend_schema(responses=paginated(ItemOutput))``: ``{"next", "previous", "results"}``."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    name = item_serializer.__name__.removesuffix("Output")
    return inline_serializer(
        name=f"Paginated{name}List",
        fields={
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null."),
            "previous": serializers.URLField(
                allow_null=True, help_text="The page before, or null."
            ),
            "results": item_serializer(many=True),
        },
    )
