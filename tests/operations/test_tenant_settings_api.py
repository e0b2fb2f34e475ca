"""``PATCH /api/v1/tenant`` changes only what it names: a key it does not know (a misspelling,
a read-only field) is a 400 naming it, and nothing is changed."""

import pytest

from callbacks.services import endpoint_get

pytestmark = pytest.mark.django_db
URL = "/api/v1/tenant"


def test_a_misspelled_setting_is_refused_by_name_and_nothing_changes(tenant_a):
    before = tenant_a.client.get(URL).json()
    response = tenant_a.client.patch(URL, {"max_attempts": 3, "stall_sent_secs": 60}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "unknown_field"
    assert "'stall_sent_secs'" in error["message"]
    assert error["details"] == [
        {
            "field": "stall_sent_secs",
            "code": "unknown_field",
            "message": "'stall_sent_secs' is not a field of this request.",
        }
    ]
    assert tenant_a.client.get(URL).json() == before


def test_every_unknown_key_is_named_also_read_only_ones(tenant_a):
    response = tenant_a.client.patch(
        URL, {"slug": "other", "callback_secret": "x", "callback_url": ""}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_field"
    assert [d["field"] for d in error["details"]] == ["callback_secret", "slug"]
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.slug == "acme"


def test_a_callback_url_with_a_misspelled_key_beside_it_is_not_set(tenant_a):
    response = tenant_a.client.patch(
        URL,
        {"callback_url": "http://127.0.0.1:9999/hook", "callback_event": ["message.read"]},
        format="json",
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_field"
    assert endpoint_get(tenant=tenant_a.tenant).url == ""


def test_known_settings_still_change(tenant_a):
    response = tenant_a.client.patch(URL, {"max_attempts": 3}, format="json")
    assert response.status_code == 200 and response.json()["max_attempts"] == 3
