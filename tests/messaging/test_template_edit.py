"""Editing a template goes to the provider first (the sandbox speaks Meta's edit endpoint):
Waypost never sends components the provider has not reviewed."""

import pytest

from core.errors import Conflict, UpstreamError
from templates_registry.models import MessageTemplate
from templates_registry.services import template_update, templates_sync
from whatsapp import get_provider

from .conftest import make_live_tenant

pytestmark = pytest.mark.redis

EDITED = [{"type": "BODY", "text": "Hello {{1}}, order {{2}} is on its way."}]


def remote(live, tenant) -> dict:
    [template] = live.get(
        f"/v23.0/{tenant.sender.waba_id}/message_templates", params={"name": "order_update"}
    ).json()["data"]
    return template


def test_an_approved_template_edit_is_submitted_and_waits_for_review(live):
    tenant = make_live_tenant(live, "editor")
    template = template_update(
        template=tenant.template, category="UTILITY", components=EDITED, by="alice"
    )
    assert template.status == "PENDING"  # no message may use the unreviewed components
    assert (template.status_changed_by, template.components) == ("alice", EDITED)
    assert remote(live, tenant)["components"] == EDITED  # the provider has the edit
    assert live.get("/_sandbox/stats").json()["templates_edited"] == 1
    templates_sync(tenant=tenant.tenant)  # the review's outcome (here: approved at once)
    assert MessageTemplate.objects.get(pk=template.pk).status == "APPROVED"


def test_edits_the_provider_would_refuse_are_refused_before_sending(live):
    tenant = make_live_tenant(live, "strict")
    with pytest.raises(Conflict) as refused:
        template_update(template=tenant.template, category="MARKETING", components=EDITED)
    assert refused.value.code == "template_category_locked"
    MessageTemplate.objects.filter(pk=tenant.template.pk).update(status="PENDING")
    tenant.template.refresh_from_db()
    with pytest.raises(Conflict) as in_review:
        template_update(template=tenant.template, category="UTILITY", components=EDITED)
    assert in_review.value.code == "template_not_editable"
    assert live.get("/_sandbox/stats").json()["templates_edited"] == 0
    assert MessageTemplate.objects.get(pk=tenant.template.pk).components != EDITED


def test_a_provider_outage_during_an_edit_changes_nothing(live, settings):
    tenant = make_live_tenant(live, "outage")
    settings.SANDBOX_URL = "http://127.0.0.1:1"
    get_provider.cache_clear()
    with pytest.raises(UpstreamError) as down:
        template_update(template=tenant.template, category="UTILITY", components=EDITED)
    assert (down.value.status, down.value.code) == (503, "provider_unavailable")
    template = MessageTemplate.objects.get(pk=tenant.template.pk)
    assert (template.status, template.components) == ("APPROVED", tenant.template.components)


def test_the_admin_shows_a_refused_edit_on_the_page(live, admin_client):
    tenant = make_live_tenant(live, "adminedit")
    MessageTemplate.objects.filter(pk=tenant.template.pk).update(status="DISABLED")
    url = f"/admin/templates_registry/messagetemplate/{tenant.template.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    response = admin_client.post(
        url,
        {"category": "UTILITY", "header_format": "", "body_text": EDITED[0]["text"]},
        follow=True,
    )
    assert response.status_code == 200
    assert "cannot be edited" in response.content.decode()
    assert MessageTemplate.objects.get(pk=tenant.template.pk).components != EDITED
