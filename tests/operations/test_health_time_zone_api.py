"""The tenant's time zone (campaign send windows for recipients known only by BSUID) through
``PATCH /api/v1/tenant``: an IANA name, anything else refused by name."""

import pytest

from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def test_the_time_zone_is_read_and_changed(tenant_a):
    assert tenant_a.client.get("/api/v1/tenant").json()["time_zone"] == "UTC"
    response = tenant_a.client.patch(
        "/api/v1/tenant", {"time_zone": "America/Sao_Paulo"}, format="json"
    )
    assert response.status_code == 200 and response.json()["time_zone"] == "America/Sao_Paulo"
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).time_zone == "America/Sao_Paulo"


def test_a_time_zone_that_is_not_one_is_refused_and_nothing_changes(tenant_a):
    response = tenant_a.client.patch(
        "/api/v1/tenant", {"time_zone": "Mars/Olympus", "max_attempts": 7}, format="json"
    )
    assert response.status_code == 400
    [detail] = response.json()["error"]["details"]
    assert (detail["field"], detail["code"]) == ("time_zone", "time_zone")
    assert "IANA" in detail["message"]
    tenant = Tenant.objects.get(pk=tenant_a.tenant.pk)
    assert (tenant.time_zone, tenant.max_attempts) == ("UTC", 5)
