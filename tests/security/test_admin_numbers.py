"""Phone numbers in the admin are masked unless the user holds ``messaging.view_recipient``:
also in what a page shows raw — a stored webhook body, a callback's payload — and on the
change pages of suppressions and contacts, not only in the lists."""

import json

import pytest
from django.contrib.auth.models import Permission, User

from callbacks.models import CallbackEndpoint, CallbackEvent
from callbacks.services import Item, callbacks_enqueue
from messaging.models import Contact, Suppression
from sandbox import wire
from tenants.models import StaffScope
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db
NUMBER, MASKED = "4915112345678", "491*******678"


def staff(client, tenant, *, numbers: bool):
    user = User.objects.create_user(f"staff{User.objects.count()}", is_staff=True)
    codenames = [
        "view_callbackevent",
        "view_webhookdelivery",
        "view_suppression",
        "change_suppression",
        "view_contact",
    ] + (["view_recipient"] if numbers else [])
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    StaffScope.objects.create(user=user).tenants.add(tenant)
    client.force_login(user)
    return client


@pytest.fixture
def pages(tenant_a):
    tenant = tenant_a.tenant
    sender = tenant.senders.get()
    CallbackEndpoint.objects.create(
        tenant=tenant, url="https://93.184.216.34/hook", event_types=["message.delivered"]
    )
    callbacks_enqueue(tenant_id=tenant.pk, items=[Item("message.delivered", {"to": f"+{NUMBER}"})])
    body = wire.envelope(None, "messages", {"messages": [{"from": NUMBER, "text": "hi"}]})
    delivery = WebhookDelivery.objects.create(
        provider="360dialog",
        sender=sender,
        received_at="2026-12-01T00:00:00Z",
        body=json.dumps(body).encode(),
        body_sha256="x" * 64,
    )
    suppression = Suppression.objects.create(tenant=tenant, recipient=f"+{NUMBER}")
    contact = Contact.objects.create(tenant=tenant, wa_id=NUMBER)
    event = CallbackEvent.objects.get(tenant=tenant)
    return [
        f"/admin/callbacks/callbackevent/{event.pk}/change/",
        f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/",
        f"/admin/messaging/suppression/{suppression.pk}/change/",
        f"/admin/messaging/contact/{contact.pk}/change/",
    ]


def test_numbers_are_masked_on_every_page_without_the_permission(client, tenant_a, pages):
    viewer = staff(client, tenant_a.tenant, numbers=False)
    for url in pages:
        page = viewer.get(url)
        assert page.status_code == 200, url
        html = page.content.decode()
        assert NUMBER not in html, url
        assert MASKED in html, url


def test_numbers_are_shown_with_the_permission(client, tenant_a, pages):
    viewer = staff(client, tenant_a.tenant, numbers=True)
    for url in pages:
        assert NUMBER in viewer.get(url).content.decode(), url


def test_a_masked_suppression_keeps_its_number_when_saved(client, tenant_a, pages):
    viewer = staff(client, tenant_a.tenant, numbers=False)
    suppression = Suppression.objects.get()
    viewer.post(pages[2], {"tenant": str(tenant_a.tenant.pk), "reason": "complaint"})
    suppression.refresh_from_db()
    assert (suppression.recipient, suppression.reason) == (f"+{NUMBER}", "complaint")
