"""The API in its OpenAPI schema, beyond what drf-spectacular derives from the serializers:

* every operation documents the statuses it can answer besides its success — all in the one
  error shape (``core.api``) — so a client generated from ``/api/schema/`` (or a schema-driven
  fuzzer) knows them;
* an input that refuses unknown keys (``core.api.RejectUnknownFields``) says so
  (``additionalProperties: false``), with the constraints its serializer declares beyond its
  fields' own (``openapi_properties``: a pattern, an enum, Meta's component formats;
  ``openapi_schema``: e.g. "``to`` or ``recipient``");
* an operation's answers link to the operations that follow it (``follow_ups``: OpenAPI
  ``links``, e.g. from ``POST /api/v1/messages`` to the message and its cancel), so generated
  clients and stateful fuzzers reach them with real ids.

``error_responses`` is the drf-spectacular postprocessing hook
(``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``) that writes the first and the last."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension

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
            _write_links(operation)
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


# --- inputs that refuse unknown keys -------------------------------------------------------------


class StrictInputExtension(OpenApiSerializerExtension):
    """The schema of a ``RejectUnknownFields`` serializer: its fields as drf-spectacular maps
    them, ``additionalProperties: false``, and what the serializer declares beyond its fields'
    own constraints — ``openapi_properties`` (merged into each named property) and
    ``openapi_schema`` (merged into the object)."""

    target_class = "core.api.RejectUnknownFields"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction) -> dict:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        for name, extra in getattr(self.target, "openapi_properties", {}).items():
            if name in schema["properties"]:
                schema["properties"][name] = {**schema["properties"][name], **extra}
        schema.update(getattr(self.target, "openapi_schema", {}))
        return schema


# --- links to the operations that follow ---------------------------------------------------------

_LINKS = "x-follow-ups"


def follow_ups(*statuses: int, **links: tuple[str, dict[str, str], str]) -> dict:
    """``extensions`` for ``@extend_schema``: OpenAPI links from the answers with these
    ``statuses`` to the operations that follow, each ``name=(operationId, {parameter: runtime
    expression}, description)`` — e.g. ``GetMessage=("messages_retrieve", {"message_id":
    "$response.body#/id"}, "The message, with its events.")``."""
    return {
        _LINKS: {
            "statuses": [str(s) for s in statuses],
            "links": {
                name: {"operationId": operation, "parameters": parameters, "description": text}
                for name, (operation, parameters, text) in links.items()
            },
        }
    }


def _write_links(operation: dict) -> None:
    """The operation's ``follow_ups`` written as ``links`` of its answers (OpenAPI puts links
    on a response, which ``@extend_schema`` cannot reach)."""
    spec = operation.pop(_LINKS, None)
    if not spec:
        return
    for status in spec["statuses"]:
        response = operation.get("responses", {}).get(status)
        if response is not None:
            response.setdefault("links", {}).update(spec["links"])


def idempotency_key_parameter(what: str):
    """The ``Idempotency-Key`` header of a create (``core.api.idempotency_key`` reads it), for
    ``@extend_schema(parameters=[…])``: 1-255 printable characters, the canonical form the
    intake accepts (HTTP drops spaces at either end)."""
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(
        "Idempotency-Key",
        {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]([ -~]*[!-~])?$"},
        OpenApiParameter.HEADER,
        required=True,
        description=f"Your unique key for this {what}: the same key and request again answer "
        f"the {what} already made (200, `Idempotent-Replayed: true`); with another, 409.",
    )
