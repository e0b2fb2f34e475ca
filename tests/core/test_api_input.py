"""Input the database or the JSON layer cannot take is a 400 in the one error shape, never a
500: deep nesting, NUL characters, lone surrogates, oversized metadata."""

import json

import pytest
from django.core.exceptions import DisallowedHost, PermissionDenied, SuspiciousOperation
from django.test import RequestFactory
from django.urls import get_resolver
from rest_framework.test import APIClient

from messaging.models import Message

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body


@pytest.fixture
def template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


def post_raw(api, raw: str, key="k1"):
    return api.generic(
        "POST",
        "/api/v1/messages",
        raw.encode("utf-8", "surrogatepass"),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def assert_400(response, code):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_a_400(api, template, depth):
    data = body(template)
    raw = json.dumps(data)[:-1] + ', "metadata": ' + "[" * depth + "]" * depth + "}"
    assert_400(post_raw(api, raw), "malformed_request")
    assert not Message.objects.exists()


def test_a_nul_character_in_the_body_is_a_400(api, template):
    data = body(template, metadata={"note": "a\u0000b"})
    assert_400(post_raw(api, json.dumps(data)), "malformed_request")


def test_a_lone_surrogate_in_the_body_is_a_400(api, template):
    raw = json.dumps(body(template)).replace('"A-1"}', '"\\ud800"}', 1)
    assert "\\ud800" in raw
    assert_400(post_raw(api, raw), "malformed_request")


def test_a_nul_character_in_a_query_parameter_is_a_400(api):
    for url in ("/api/v1/inbound?wa_id=49%00151", "/api/v1/messages?recipient=%00"):
        assert_400(api.get(url), "malformed_request")


def test_metadata_has_a_documented_size_limit(api, template):
    big = {"blob": "x" * (2 * 1024 * 1024)}
    assert_400(post_raw(api, json.dumps(body(template, metadata=big))), "metadata_too_large")
    limit = {"blob": "x" * 4000}
    assert post_raw(api, json.dumps(body(template, metadata=limit)), key="k2").status_code == 202


# --- paths the API does not have: a JSON 404, also with DEBUG on ---------------------------------


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request, settings):
    """Both configurations: with DEBUG on, Django's own 404 is an HTML page listing every URL."""
    settings.DEBUG = request.param
    return request.param


def assert_json_404(response, code):
    assert response.status_code == 404, response.content[:200]
    assert response["Content-Type"] == "application/json", response.content[:200]
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    return error


def test_a_trailing_slash_is_a_json_404_naming_the_path_without_it(api, debug):
    error = assert_json_404(api.get("/api/v1/messages/"), "not_found")
    assert "/api/v1/messages)" in error["message"]
    assert_json_404(api.post("/api/v1/messages/", {}, format="json"), "not_found")


def test_an_unknown_path_is_a_json_404(api, debug):
    for path in ("/api/v1/messagez", "/api/", "/api/v2/messages", "/api/v1/messages/batch/x"):
        assert_json_404(api.get(path), "not_found")


def test_an_id_that_is_not_a_uuid_is_a_404_with_the_unknown_ids_code(api, debug):
    assert_json_404(api.get("/api/v1/messages/42"), "message_not_found")
    assert_json_404(api.post("/api/v1/messages/42/cancel"), "message_not_found")
    assert_json_404(api.get("/api/v1/templates/order_update"), "template_not_found")
    error = assert_json_404(api.post("/api/v1/templates/x/validate", {}), "template_not_found")
    assert "'x' is not an id" in error["message"]


def test_an_unknown_path_answers_the_same_without_a_key(client, debug):
    assert_json_404(client.get("/api/v1/nothing-here"), "not_found")


def test_the_api_docs_without_their_slash_are_redirected_to_it(client, debug):
    response = client.get("/api/docs")
    assert response.status_code == 301 and response["Location"] == "/api/docs/"


# --- keys the endpoint does not define: refused by name, nothing stored ---------------------------


def assert_unknown(response, *fields):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "unknown_field", error
    assert [d["field"] for d in error["details"]] == list(fields)
    assert all(f"'{field}'" in error["message"] for field in fields)


def test_a_message_with_a_misspelled_key_is_refused_and_not_stored(api, template):
    data = body(template, ttl_secs=60)
    assert_unknown(post_raw(api, json.dumps(data)), "ttl_secs")
    data = body(template)
    data["template"]["lang"] = "en_US"
    assert_unknown(post_raw(api, json.dumps(data)), "template.lang")
    assert not Message.objects.exists()


def test_a_template_message_with_a_text_beside_it_is_refused(api, template):
    data = {**body(template), "text": {"body": "hi"}}
    assert_unknown(post_raw(api, json.dumps(data)), "text")


def test_a_batch_item_with_an_unknown_key_is_refused_alone(api, template):
    good = {**body(template), "idempotency_key": "b1"}
    bad = {**body(template), "idempotency_key": "b2", "priority": "high"}
    response = api.post("/api/v1/messages/batch", {"messages": [good, bad]}, format="json")
    results = response.json()["results"]
    assert [r["status"] for r in results] == [202, 400]
    assert results[1]["error"]["code"] == "unknown_field"
    assert_unknown(
        api.post("/api/v1/messages/batch", {"messages": [good], "dry_run": True}, format="json"),
        "dry_run",
    )


def test_template_create_and_validate_refuse_unknown_keys(api, template):
    definition = {
        "name": "shipping_note",
        "language": "en_US",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Your parcel is on its way."}],
        "allow_category_change": True,
    }
    assert_unknown(
        api.post("/api/v1/templates", definition, format="json"), "allow_category_change"
    )
    url = f"/api/v1/templates/{template.pk}/validate"
    assert_unknown(api.post(url, {"components": [], "policy": "x"}, format="json"), "policy")


def test_a_post_to_a_path_the_api_lacks_is_a_json_404_not_a_csrf_page(tenant_a, debug):
    """Schemathesis found it: the test client skips CSRF checks, a real client does not."""
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant_a.raw_key}")
    assert_json_404(client.post("/api/v1/messages/null,null/cancel"), "message_not_found")
    assert_json_404(client.post("/api/v1/nothing-here", {}, format="json"), "not_found")


# --- a bug: the JSON 500, also with DEBUG on; reported as Django reports one ---------------------


def test_a_bug_answers_the_json_500_and_is_reported(tenant_a, debug, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("operations.apis.tenant_settings", broken)
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant_a.raw_key}")
    response = client.get("/api/v1/tenant")
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["details"] == ([{"exception": "RuntimeError: a bug"}] if debug else [])
    # Reported through got_request_exception, as Django does: the test client raises it.
    with pytest.raises(RuntimeError, match="a bug"):
        tenant_a.client.get("/api/v1/tenant")


# --- a bad Host, Django's 400 and 403: JSON on /api/ and /webhooks/, also with DEBUG on ----------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/messages"),
        ("post", "/api/v1/messages"),
        ("get", "/webhooks/whatsapp"),
        ("post", "/webhooks/360dialog/some-token"),
    ],
)
def test_a_host_not_allowed_is_a_json_400_on_the_api_and_the_webhooks(client, debug, method, path):
    response = getattr(client, method)(path, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json", response.content[:200]
    assert response.json()["error"]["code"] == "disallowed_host"


def test_a_host_not_allowed_keeps_djangos_page_on_the_admin(client, debug):
    response = client.get("/admin/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "status, exception, code",
    [
        (400, SuspiciousOperation("odd"), "bad_request"),
        (400, DisallowedHost("evil.example"), "disallowed_host"),
        (403, PermissionDenied(), "permission_denied"),
    ],
)
def test_djangos_400_and_403_are_json_on_the_api_and_the_webhooks(status, exception, code):
    """The site's ``handler400`` and ``handler403`` (``config.urls``): what Django answers a
    ``SuspiciousOperation`` or ``PermissionDenied`` raised outside DRF with ``DEBUG`` off."""
    handler = get_resolver().resolve_error_handler(status)
    for path in ("/api/v1/messages", "/webhooks/whatsapp"):
        response = handler(RequestFactory().get(path), exception)
        assert response.status_code == status
        assert response["Content-Type"] == "application/json"
        assert json.loads(response.content)["error"]["code"] == code
    admin = handler(RequestFactory().get("/admin/"), exception)
    assert admin.status_code == status and admin["Content-Type"].startswith("text/html")
