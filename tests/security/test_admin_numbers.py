"""Phone numbers in the admin are masked unless the user holds ``messaging.view_recipient``:
also in what a page shows raw — a stored webhook body, a callback's payload — and on the
change pages of suppressions and contacts, not only in the lists; and in the error texts that
quote what failed — a message's provider details, a delivery's error, an endpoint's health
(the receiver's answer), a callback attempt — wherever they are shown."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from callbacks.models import CallbackAttempt, CallbackEndpoint, CallbackEvent
from callbacks.services import Item, callbacks_enqueue
from messaging.models import Contact, Message, Suppression
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
        "view_message",
        "view_callbackendpoint",
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


@pytest.fixture
def error_pages(tenant_a):
    """Where an error text quoting ``NUMBER`` is shown: the messages list (the error's
    tooltip), the deliveries list and a delivery's page, the endpoints list, an endpoint's
    page, the operations page (the endpoint's health) and a callback event's page (its
    attempts)."""
    tenant = tenant_a.tenant
    sender = tenant.senders.get()
    Message.objects.create(
        tenant=tenant,
        sender=sender,
        recipient="+4917000000001",
        template_name="order_update",
        template_language="en_US",
        template_category="UTILITY",
        idempotency_key="k-error",
        request_hash="-",
        state="failed",
        state_changed_at=timezone.now(),
        error_code="999999",  # in no table: the provider's own words are the tooltip
        error_title="Odd",
        error_details=f"Recipient {NUMBER} is not valid",
    )
    delivery = WebhookDelivery.objects.create(
        provider="360dialog",
        sender=sender,
        received_at="2026-12-01T00:00:00Z",
        body=b"{}",
        body_sha256="y" * 64,
        error=f"ValueError('bad wa_id {NUMBER}')",
    )
    endpoint = CallbackEndpoint.objects.create(
        tenant=tenant, url="https://93.184.216.34/hook", event_types=["message.delivered"]
    )
    callbacks_enqueue(tenant_id=tenant.pk, items=[Item("message.delivered", {"to": "+1"})])
    event = CallbackEvent.objects.get(tenant=tenant)
    CallbackAttempt.objects.create(
        event=event,
        url=endpoint.url,
        status_code=400,
        duration_ms=12,
        response_excerpt=f'{{"error": "unknown {NUMBER}"}}',
        error=f"HTTP 400 for {NUMBER}",
    )
    CallbackEvent.objects.filter(pk=event.pk).update(last_error=f"HTTP 400 for {NUMBER}")
    CallbackEndpoint.objects.filter(pk=endpoint.pk).update(failures=3)
    return [
        "/admin/messaging/message/",
        "/admin/webhooks/webhookdelivery/",
        f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/",
        "/admin/callbacks/callbackendpoint/",
        f"/admin/callbacks/callbackendpoint/{endpoint.pk}/change/",
        "/admin/operations/",
        f"/admin/callbacks/callbackevent/{event.pk}/change/",
    ]


def test_numbers_in_error_texts_are_masked_without_the_permission(client, tenant_a, error_pages):
    viewer = staff(client, tenant_a.tenant, numbers=False)
    pages = {url: viewer.get(url) for url in error_pages}
    assert {url: page.status_code for url, page in pages.items()} == dict.fromkeys(pages, 200)
    leaking = [url for url, page in pages.items() if NUMBER in page.content.decode()]
    assert leaking == []  # every place, not only the first
    assert all(MASKED in page.content.decode() for page in pages.values())


def test_numbers_in_error_texts_are_shown_with_the_permission(client, tenant_a, error_pages):
    viewer = staff(client, tenant_a.tenant, numbers=True)
    hidden = [url for url in error_pages if NUMBER not in viewer.get(url).content.decode()]
    assert hidden == []
