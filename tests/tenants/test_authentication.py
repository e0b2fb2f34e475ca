"""API keys: Bearer authentication, hashing at rest, revocation, inactive tenants."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiKey
from tenants.services import api_key_create, api_key_revoke

URL = "/api/v1/templates"


def client_with(header=None):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_valid_key_authenticates(tenant_a):
    assert tenant_a.client.get(URL).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "not_authenticated"),
        ("Bearer", "authentication_failed"),
        ("Token abc", "authentication_failed"),
        ("Bearer wp_nope_nope", "authentication_failed"),
        ("Bearer not-even-our-format", "authentication_failed"),
    ],
)
def test_missing_or_bad_key_is_401(header, code):
    response = client_with(header).get(URL)
    assert_error(response, 401, code)
    assert response["WWW-Authenticate"] == "Bearer"


def test_wrong_secret_with_a_real_prefix_is_401(tenant_a):
    prefix = tenant_a.raw_key.split("_")[1]
    assert_error(
        client_with(f"Bearer wp_{prefix}_wrongsecret").get(URL), 401, "authentication_failed"
    )


def test_revoked_key_is_401(tenant_a):
    api_key_revoke(api_key=ApiKey.objects.get(tenant=tenant_a.tenant))
    assert_error(tenant_a.client.get(URL), 401, "authentication_failed")


def test_inactive_tenant_is_401(tenant_a):
    tenant_a.tenant.active = False
    tenant_a.tenant.save()
    assert_error(tenant_a.client.get(URL), 401, "tenant_inactive")


def test_key_is_stored_hashed_never_in_clear(tenant_a):
    stored = ApiKey.objects.get(tenant=tenant_a.tenant)
    secret = tenant_a.raw_key.split("_", 2)[2]
    values = {str(v) for v in ApiKey.objects.filter(pk=stored.pk).values().get().values()}
    assert not any(secret in v for v in values)
    assert tenant_a.raw_key.startswith(f"wp_{stored.prefix}_")
    assert len(stored.key_hash) == 64


def test_last_used_at_is_recorded_but_not_on_every_request(tenant_a):
    api_key = ApiKey.objects.get(tenant=tenant_a.tenant)
    assert api_key.last_used_at is None
    tenant_a.client.get(URL)
    api_key.refresh_from_db()
    first = api_key.last_used_at
    assert first is not None
    tenant_a.client.get(URL)
    api_key.refresh_from_db()
    assert api_key.last_used_at == first  # within the one-minute resolution
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now() - timedelta(hours=1))
    tenant_a.client.get(URL)
    api_key.refresh_from_db()
    assert api_key.last_used_at > first - timedelta(minutes=1)


def test_a_tenant_can_hold_several_keys(tenant_a):
    second = api_key_create(tenant=tenant_a.tenant, name="ci").raw
    assert client_with(f"Bearer {second}").get(URL).status_code == 200
    assert tenant_a.client.get(URL).status_code == 200
