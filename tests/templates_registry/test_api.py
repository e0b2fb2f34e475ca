"""The template API through real HTTP requests (DRF test client, real PostgreSQL)."""

import pytest

from templates_registry.models import MessageTemplate

from ..factories import MessageTemplateFactory
from .builders import body, buttons, footer, header, quick_reply, send_body, send_header, text

URL = "/api/v1/templates"

ORDER_UPDATE = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        header("Order {{1}}"),
        body("Hi {{1}}, your order {{2}} has shipped."),
        footer(),
        buttons(quick_reply("Stop")),
    ],
}
TEMPLATE_KEYS = {
    "id",
    "name",
    "language",
    "category",
    "status",
    "provider_template_id",
    "components",
    "rejection_reason",
}


def test_create_returns_the_template_pending(api, tenant_a):
    response = api.post(URL, ORDER_UPDATE, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert set(data) >= TEMPLATE_KEYS
    assert data["status"] == "PENDING"
    assert data["parameter_format"] == "POSITIONAL"
    assert data["components"] == ORDER_UPDATE["components"]
    assert MessageTemplate.objects.get(pk=data["id"]).tenant == tenant_a.tenant


def test_create_reports_every_violation_in_the_one_error_shape(api):
    bad = {**ORDER_UPDATE, "components": [header("x" * 61), body("{{1}} and {{3}}")]}
    response = api.post(URL, bad, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "header_text_too_long"
    codes = {d["code"] for d in error["details"]}
    assert {"header_text_too_long", "variable_at_edge", "placeholder_sequence"} <= codes
    assert all({"code", "message", "component", "parameter"} <= set(d) for d in error["details"])
    assert not MessageTemplate.objects.exists()


def test_create_with_missing_fields_is_a_structured_400(api):
    response = api.post(URL, {"name": "x"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert {d["field"] for d in error["details"]} == {"language", "category", "components"}


def test_malformed_json_is_a_structured_400(api):
    response = api.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_same_name_and_language_is_a_409(api):
    assert api.post(URL, ORDER_UPDATE, format="json").status_code == 201
    response = api.post(URL, ORDER_UPDATE, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "template_exists"
    other_language = {**ORDER_UPDATE, "language": "pt_BR"}
    assert api.post(URL, other_language, format="json").status_code == 201


def test_list_filters_and_paginates(api, tenant_a):
    for i in range(3):
        MessageTemplateFactory(tenant=tenant_a.tenant, name=f"t_{i}")
    MessageTemplateFactory(tenant=tenant_a.tenant, name="paused_one", status="PAUSED")
    data = api.get(URL, {"page_size": 2}).json()
    assert len(data["results"]) == 2 and data["next"]
    rest = api.get(data["next"]).json()
    assert len(rest["results"]) == 2 and rest["next"] is None
    paused = api.get(URL, {"status": "paused"}).json()["results"]
    assert [t["name"] for t in paused] == ["paused_one"]


def test_detail(api, tenant_a):
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    data = api.get(f"{URL}/{template.pk}").json()
    assert data["id"] == str(template.pk) and set(data) >= TEMPLATE_KEYS


def test_unknown_id_and_unknown_route_are_json_404s(api):
    response = api.get(f"{URL}/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "template_not_found"
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_is_a_structured_405(api, tenant_a):
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    response = api.delete(f"{URL}/{template.pk}")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.fixture
def order_template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


def valid_params(first="Ana", order="A-1"):
    return [send_header(text(order)), send_body(text(first), text(order))]


def test_validate_accepts_valid_parameters(api, order_template):
    response = api.post(
        f"{URL}/{order_template.pk}/validate", {"components": valid_params()}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"valid": True, "components": valid_params(), "sanitized": []}


def test_validate_rejects_a_newline_under_the_default_policy(api, order_template):
    response = api.post(
        f"{URL}/{order_template.pk}/validate",
        {"components": valid_params(first="Ana\nMaria")},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "param_newline"
    assert error["details"] == [
        {
            "code": "param_newline",
            "component": "body",
            "parameter": "1",
            "message": error["details"][0]["message"],
        }
    ]


def test_validate_sanitizes_under_the_sanitize_policy(api, tenant_a, order_template):
    tenant_a.tenant.param_policy = "sanitize"
    tenant_a.tenant.save()
    response = api.post(
        f"{URL}/{order_template.pk}/validate",
        {"components": valid_params(first="Ana\nMaria")},
        format="json",
    )
    assert response.status_code == 200
    data = response.json()
    assert data["components"] == valid_params(first="Ana Maria")
    assert data["sanitized"] == [
        {
            "component": "body",
            "parameter": "1",
            "rules": ["param_newline"],
            "before": "Ana\nMaria",
            "after": "Ana Maria",
        }
    ]


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/templates" in schema.content
    assert client.get("/api/docs/").status_code == 200
