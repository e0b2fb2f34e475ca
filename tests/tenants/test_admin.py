"""Operators change a sender's or tenant's status through actions that record who and why;
reactivating resumes its queued messages at once."""

import pytest

from messaging.models import Message
from tenants.models import SenderNumber, Tenant

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body

pytestmark = pytest.mark.django_db(transaction=True)


def test_reactivating_a_blocked_sender_records_who_and_makes_its_messages_due(
    tenant_a, admin_client
):
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    sender = tenant_a.tenant.senders.get()
    SenderNumber.objects.filter(pk=sender.pk).update(status="blocked", status_reason="190: …")
    message_id = tenant_a.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY="k"
    ).json()["id"]
    parked = Message.objects.get(pk=message_id)  # its sender is blocked: no worker takes it
    assert (parked.state, parked.next_attempt_at) == ("queued", None)
    response = admin_client.post(
        "/admin/tenants/sendernumber/",
        {"action": "reactivate", "_selected_action": [sender.pk]},
    )
    assert response.status_code == 302
    sender.refresh_from_db()
    assert (sender.status, sender.status_changed_by) == ("active", "admin")
    assert "reactivated in the admin by admin" in sender.status_reason
    # Due from now: the suite's shared worker may already have claimed it (submitting, no
    # next attempt) — either way it left the parked state, which only the resume can do.
    resumed = Message.objects.get(pk=message_id)
    assert resumed.next_attempt_at is not None or resumed.state != "queued", resumed.state


def test_the_status_is_read_only_in_the_forms(tenant_a, admin_client):
    sender = tenant_a.tenant.senders.get()
    page = admin_client.get(f"/admin/tenants/sendernumber/{sender.pk}/change/").content.decode()
    assert 'name="status"' not in page and "status_changed_by" not in page.split("<form")[0]
    tenant_page = admin_client.get(f"/admin/tenants/tenant/{tenant_a.tenant.pk}/change/")
    assert 'name="active"' not in tenant_page.content.decode()


def test_deactivating_and_activating_a_tenant(tenant_a, admin_client):
    url = "/admin/tenants/tenant/"
    admin_client.post(url, {"action": "deactivate", "_selected_action": [tenant_a.tenant.pk]})
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).active is False
    admin_client.post(url, {"action": "activate", "_selected_action": [tenant_a.tenant.pk]})
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).active is True
