"""Input the database or the JSON layer cannot take is a 400 in the one error shape, never a
500: deep nesting, NUL characters, lone surrogates, oversized metadata."""

import json

import pytest

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
