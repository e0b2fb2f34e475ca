"""The OpenAPI schema clients generate from: valid OpenAPI, produced without warnings, with a
typed body (an object with properties, no ``dict`` placeholder) for every request and response,
the constraints the API enforces on the bodies it takes (so generated requests reach its logic),
and links from an operation's answer to the operations that follow it."""

import io
import json
import re

import pytest
from django.core.management import call_command
from openapi_spec_validator import validate

from templates_registry.rules.limits import (
    BODY_TEXT_MAX,
    BUTTONS_MAX,
    CATEGORIES,
    LANGUAGE_CODE,
    NAME_MAX,
    TEMPLATE_NAME,
)

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
    """``node`` with its ``$ref`` followed — also one wrapped in ``allOf`` beside other
    keywords, as drf-spectacular writes an enum with a description."""
    while "$ref" in node or len(node.get("allOf", [])) == 1:
        if "allOf" in node:
            node = {**{k: v for k, v in node.items() if k != "allOf"}, **node["allOf"][0]}
            continue
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def variants(schema: dict, node: dict) -> list[dict]:
    """A schema's alternatives (oneOf/anyOf), each resolved; or itself — also an object with
    properties whose ``oneOf`` only says which of them are required."""
    node = resolve(schema, node)
    alternatives = node.get("oneOf") or node.get("anyOf")
    if alternatives and not node.get("properties"):
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


# --- the constraints the API enforces, stated -----------------------------------------------------


def request_body(schema: dict, path: str, method: str = "post") -> dict:
    node = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return resolve(schema, node)


def prop(schema: dict, node: dict, *names: str) -> dict:
    """The schema of a nested property, ``$ref``s resolved on the way."""
    for name in names:
        node = resolve(schema, resolve(schema, node)["properties"][name])
    return node


def test_a_template_message_states_its_recipient_template_and_parameters(schema):
    template_kind, text_kind = variants(schema, request_body(schema, "/api/v1/messages"))
    for kind in (template_kind, text_kind):
        assert kind["additionalProperties"] is False
        assert kind["oneOf"] == [{"required": ["to"]}, {"required": ["recipient"]}]
        assert re.fullmatch(prop(schema, kind, "to")["pattern"], "+4915112345678")
        assert re.fullmatch(prop(schema, kind, "recipient")["pattern"], "US.13491208655302741918")
    reference = prop(schema, template_kind, "template")
    assert reference["additionalProperties"] is False
    assert prop(schema, reference, "name")["pattern"] == TEMPLATE_NAME.pattern
    assert prop(schema, reference, "name")["maxLength"] == NAME_MAX
    assert prop(schema, reference, "language")["pattern"] == LANGUAGE_CODE.pattern
    component = prop(schema, reference, "components")["items"]
    assert "body" in component["properties"]["type"]["enum"]
    parameter_kinds = {
        v["properties"]["type"]["enum"][0]
        for v in component["properties"]["parameters"]["items"]["oneOf"]
    }
    assert {"text", "currency", "date_time", "image", "payload"} <= parameter_kinds
    assert prop(schema, text_kind, "text", "body")["maxLength"] == 4096


def test_the_idempotency_key_header_is_required_and_bounded(schema):
    [header] = [
        p
        for p in schema["paths"]["/api/v1/messages"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    ]
    assert header["required"] and header["in"] == "header"
    assert header["schema"]["minLength"] == 1 and header["schema"]["maxLength"] == 255
    assert re.fullmatch(header["schema"]["pattern"], "order-1042-shipped")
    assert not re.fullmatch(header["schema"]["pattern"], " padded ")


def test_a_template_definition_states_meta_s_limits(schema):
    body = request_body(schema, "/api/v1/templates")
    assert body["additionalProperties"] is False
    assert prop(schema, body, "name")["pattern"] == TEMPLATE_NAME.pattern
    assert set(prop(schema, body, "category")["enum"]) == set(CATEGORIES)
    components = prop(schema, body, "components")
    assert components["minItems"] == 1
    kinds = {v["properties"]["type"]["enum"][0]: v for v in components["items"]["oneOf"]}
    assert {"HEADER", "BODY", "FOOTER", "BUTTONS"} <= set(kinds)
    assert kinds["BODY"]["properties"]["text"]["maxLength"] == BODY_TEXT_MAX
    assert kinds["BUTTONS"]["properties"]["buttons"]["maxItems"] == BUTTONS_MAX


def test_validate_states_the_parameters_it_checks(schema):
    body = request_body(schema, "/api/v1/templates/{template_id}/validate")
    assert body["additionalProperties"] is False and body["required"] == ["components"]
    assert prop(schema, body, "components")["items"]["properties"]["parameters"]["items"]["oneOf"]


def test_every_pattern_is_a_valid_regular_expression(schema):
    def patterns(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            for value in node.values():
                yield from patterns(value)
        elif isinstance(node, list):
            for value in node:
                yield from patterns(value)

    found = list(patterns(schema))
    assert len(found) > 10
    for pattern in found:
        re.compile(pattern)


# --- links to the operations that follow ----------------------------------------------------------


def test_a_sent_message_links_to_reading_and_cancelling_it(schema):
    for status in ("202", "200"):
        links = schema["paths"]["/api/v1/messages"]["post"]["responses"][status]["links"]
        assert links["GetMessage"]["operationId"] == "messages_retrieve"
        assert links["CancelMessage"]["operationId"] == "messages_cancel_create"
        assert links["GetMessage"]["parameters"] == {"message_id": "$response.body#/id"}


def test_every_link_names_an_operation_and_its_path_parameters(schema):
    operations = {
        operation["operationId"]: operation
        for operations in schema["paths"].values()
        for operation in operations.values()
    }
    links = [
        (operation["operationId"], name, link)
        for operation in operations.values()
        for response in operation["responses"].values()
        for name, link in response.get("links", {}).items()
    ]
    assert len(links) >= 10
    for source, name, link in links:
        target = operations[link["operationId"]]
        path_parameters = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
        assert set(link["parameters"]) == path_parameters, (source, name)
        assert all(v.startswith("$response.body#/") for v in link["parameters"].values())
    assert not any("x-follow-ups" in operation for operation in operations.values())
