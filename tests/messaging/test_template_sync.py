"""Template sync pulls every page of a WABA's templates from the provider (the sandbox)."""

import pytest

from templates_registry.models import MessageTemplate
from whatsapp import get_provider

from .conftest import ORDER_UPDATE, make_live_tenant

pytestmark = pytest.mark.redis


def test_sync_pulls_all_pages_and_updates_the_registry(live):
    tenant = make_live_tenant(live, "syncer")  # has order_update, submitted and APPROVED
    waba = tenant.sender.waba_id
    for i in range(4):
        live.post(f"/v23.0/{waba}/message_templates", ORDER_UPDATE | {"name": f"remote_{i}"})
    live.post(
        "/_sandbox/template_status",
        {"waba_id": waba, "name": "order_update", "language": "en_US", "status": "PAUSED"},
    )
    provider = get_provider("sandbox")
    pages = list(provider.list_templates(credential="t", waba_id=waba, page_size=2))
    assert sorted(t.name for t in pages) == ["order_update"] + [f"remote_{i}" for i in range(4)]
    response = tenant.client.post("/api/v1/templates/sync")
    assert response.status_code == 200 and response.json() == {"created": 4, "updated": 1}
    assert MessageTemplate.objects.get(pk=tenant.template.pk).status == "PAUSED"
    assert MessageTemplate.objects.filter(tenant=tenant.tenant, status="APPROVED").count() == 4


def test_sync_with_the_provider_down_is_a_clear_error(live, settings):
    tenant = make_live_tenant(live, "offline")
    settings.SANDBOX_URL = "http://127.0.0.1:1"
    get_provider.cache_clear()
    response = tenant.client.post("/api/v1/templates/sync")
    # Not the caller's fault: a 503 with its own code and a hint when to try again.
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "provider_unavailable"
    assert response["Retry-After"] == "30"


def test_sync_refused_by_the_provider_is_a_502(live, settings):
    from tenants.models import SenderNumber

    tenant = make_live_tenant(live, "badcreds")
    SenderNumber.objects.filter(pk=tenant.sender.pk).update(
        provider="meta", credentials_env="NOT_SET_ANYWHERE"
    )
    response = tenant.client.post("/api/v1/templates/sync")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_credential_missing"
    assert "Retry-After" not in response
