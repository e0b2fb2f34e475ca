"""The stored deliveries in the admin, as the on-call person needs them: whose each one is, what
it carried, found by a wamid, with times to the second."""

import hashlib
import html
import json
import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from tenants.models import StaffScope
from webhooks.models import WebhookDelivery
from webhooks.services import deliveries_drain
from whatsapp import Provider

from ..factories import SenderNumberFactory
from .helpers import envelope, post, status

pytestmark = pytest.mark.django_db
LIST = "/admin/webhooks/webhookdelivery/"
T0 = 1_750_030_000


def words(response) -> str:
    """The page as a reader sees it: no tags, whitespace collapsed."""
    assert response.status_code == 200, response.status_code
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def delivered(client, tenant_client, wamid: str) -> WebhookDelivery:
    """A Meta status for ``wamid`` naming the tenant's number, stored by the real route."""
    number = tenant_client.tenant.senders.get().phone_number_id
    payload = envelope(number, statuses=[status(wamid, "delivered", T0)])
    assert post(client, payload).status_code == 200
    return WebhookDelivery.objects.latest("pk")


def rows(page: str) -> list[str]:
    """The list's rows, each as one line of text."""
    return [
        " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S)[1:]
    ]


def test_each_delivery_shows_its_tenant(client, admin_client, tenant_a, tenant_b):
    ours = delivered(client, tenant_a, "wamid.ours")
    theirs = delivered(client, tenant_b, "wamid.theirs")
    listed = {row.split()[0]: row for row in rows(admin_client.get(LIST).content.decode()) if row}
    assert "acme" in listed[str(ours.pk)] and "globex" not in listed[str(ours.pk)]
    assert "globex" in listed[str(theirs.pk)] and "acme" not in listed[str(theirs.pk)]
    page = words(admin_client.get(f"{LIST}{ours.pk}/change/"))
    assert "Tenant: acme" in page


def test_a_delivery_on_a_senders_own_route_is_that_senders_tenant(admin_client, tenant_b):
    sender = SenderNumberFactory(tenant=tenant_b.tenant, provider=Provider.DIALOG360)
    body = json.dumps(envelope(sender.phone_number_id, statuses=[])).encode()
    row = WebhookDelivery.objects.create(
        provider=Provider.DIALOG360,
        sender=sender,
        received_at=timezone.now(),
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    assert "Tenant: globex" in words(admin_client.get(f"{LIST}{row.pk}/change/"))


def test_deliveries_are_found_by_wamid_and_by_tenant(client, admin_client, tenant_a, tenant_b):
    # A wamid is base64: it may carry "/", "+" and "=", which a query string must survive.
    wanted = delivered(client, tenant_a, "wamid.HBgL/Tk+wanted=")
    other = delivered(client, tenant_a, "wamid.HBgLother")
    elsewhere = delivered(client, tenant_b, "wamid.HBgLelsewhere")
    found = admin_client.get(LIST, {"q": "wamid.HBgL/Tk+wanted="}).content.decode()
    ids = [row.split()[0] for row in rows(found) if row]
    assert ids == [str(wanted.pk)]
    assert "1 result" in found
    by_tenant = admin_client.get(LIST, {"tenant": "acme"}).content.decode()
    ids = {row.split()[0] for row in rows(by_tenant) if row}
    assert ids == {str(wanted.pk), str(other.pk)} and str(elsewhere.pk) not in ids


def test_times_are_shown_to_the_second(client, admin_client, tenant_a):
    row = delivered(client, tenant_a, "wamid.timed")
    received = datetime(2026, 12, 6, 3, 4, 5, 600_000, tzinfo=UTC)
    WebhookDelivery.objects.filter(pk=row.pk).update(received_at=received)
    deliveries_drain()
    row.refresh_from_db()
    page = words(admin_client.get(LIST))
    assert "2026-12-06 03:04:05" in page
    assert f"{row.processed_at:%Y-%m-%d %H:%M:%S}" in page


def test_a_deliverys_page_lists_what_it_carried_and_links_each_wamid(
    client, admin_client, tenant_a
):
    row = delivered(client, tenant_a, "wamid.HBgL/carried+1=")
    page = admin_client.get(f"{LIST}{row.pk}/change/").content.decode()
    assert 'href="/admin/messaging/message/?q=wamid.HBgL%2Fcarried%2B1%3D"' in page
    text = words(admin_client.get(f"{LIST}{row.pk}/change/"))
    assert "status wamid.HBgL/carried+1= delivered" in text


def test_staff_of_one_tenant_find_nothing_of_the_app_wide_route(client, tenant_a):
    """A Meta delivery may name several tenants' numbers: scoped staff do not see it, by
    search either."""
    delivered(client, tenant_a, "wamid.app-wide")
    user = User.objects.create_user("oncall", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    StaffScope.objects.create(user=user).tenants.add(tenant_a.tenant)
    client.force_login(user)
    found = words(client.get(LIST, {"q": "wamid.app-wide"}))
    assert "0 webhook deliveries" in found
