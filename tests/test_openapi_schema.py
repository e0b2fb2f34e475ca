"""The OpenAPI schema clients generate from: valid OpenAPI, produced without warnings, and with a
typed body (an object with properties, no ``dict`` placeholder) for every request and response."""

import io
import json

import pytest
from django.core.management import call_command
from openapi_spec_validator import validate

TYPED_REQUESTS = [
    ("/api/v1/messages", "post"),
    ("/api/v1/messages/batch", "post"),
    ("/api/v1/tenant", "patch"),
]


@pytest.fixture(scope="module")
def schema():
    out = io.StringIO()
    # --fail-on-warn: an operation drf-spectacular cannot type is an error, not a shrug.
    call_command("spectacular", "--format", "openapi-json", "--fail-on-warn", stdout=out)
    return json.loads(out.getvalue())


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def variants(schema: dict, node: dict) -> list[dict]:
    """A schema's alternatives (oneOf/anyOf), each resolved; or itself."""
    node = resolve(schema, node)
    alternatives = node.get("oneOf") or node.get("anyOf")
    if alternatives:
        return [v for alt in alternatives for v in variants(schema, alt)]
    return [node]


def typed(schema: dict, node: dict) -> bool:
    """An object with named properties (or an array of such, or a scalar): never a bare
    ``{"type": "object"}`` with nothing said about its fields."""
    for variant in variants(schema, node):
        if variant.get("type") == "array":
            if not typed(schema, variant["items"]):
                return False
        elif variant.get("type", "object") == "object" and not variant.get("properties"):
            return False
    return True


def test_the_schema_is_valid_openapi(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


@pytest.mark.parametrize(("path", "method"), TYPED_REQUESTS)
def test_the_message_batch_and_tenant_operations_have_typed_request_bodies(schema, path, method):
    body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    assert typed(schema, body)
    names = {name for v in variants(schema, body) for name in v.get("properties", {})}
    assert names, f"{method.upper()} {path} documents no fields"


def test_the_message_body_documents_both_kinds(schema):
    body = schema["paths"]["/api/v1/messages"]["post"]["requestBody"]["content"]
    kinds = variants(schema, body["application/json"]["schema"])
    assert [sorted(k["required"]) for k in kinds] == [["template"], ["text"]]
    # The recipient: a phone number or (since 2026) a business-scoped user id.
    assert all({"to", "recipient"} <= set(k["properties"]) for k in kinds)


def test_every_request_and_response_body_is_typed(schema):
    untyped = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
            bodies += [
                (f"response {code}", response.get("content", {}))
                for code, response in operation.get("responses", {}).items()
            ]
            for what, content in bodies:
                for media in content.values():
                    if not typed(schema, media["schema"]):
                        untyped.append(f"{method.upper()} {path}: {what}")
    assert untyped == []
