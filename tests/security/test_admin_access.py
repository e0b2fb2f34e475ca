"""Who reaches the admin, and what they see there (the per-page scoping and masking details:
tests/operations/test_admin.py)."""

import pytest
from django.contrib.auth.models import Permission, User

from core.ids import short
from tenants.models import StaffScope

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body

pytestmark = pytest.mark.django_db
PAGES = [
    "/admin/",
    "/admin/messaging/message/",
    "/admin/tenants/tenant/",
    "/admin/webhooks/webhookdelivery/",
    "/admin/operations/",
]


def message_of(tenant_client, to="+4915112345678"):
    template = MessageTemplateFactory(tenant=tenant_client.tenant)
    answer = tenant_client.client.post(
        "/api/v1/messages", body(template, to=to), format="json", HTTP_IDEMPOTENCY_KEY=to[-4:]
    )
    return answer.json()["id"]


def staff(client, *, tenants=(), codenames=("view_message", "view_tenant")):
    user = User.objects.create_user(f"u{User.objects.count()}", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    if tenants:
        StaffScope.objects.create(user=user).tenants.add(*tenants)
    client.force_login(user)
    return client


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_and_non_staff_users_are_sent_to_the_login_page(client, page):
    assert client.get(page).status_code == 302
    assert "/admin/login/" in client.get(page)["Location"]
    user = User.objects.create_user("customer", password="pw", is_staff=False)
    client.force_login(user)
    answer = client.get(page)
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]


def test_staff_limited_to_a_tenant_see_nothing_of_another(client, tenant_a, tenant_b):
    theirs = message_of(tenant_b, "+4915199990000")
    mine = message_of(tenant_a)
    scoped = staff(client, tenants=[tenant_a.tenant])
    listing = scoped.get("/admin/messaging/message/").content.decode()
    assert short(mine) in listing and short(theirs) not in listing
    assert scoped.get(f"/admin/messaging/message/{theirs}/change/").status_code == 302
    tenants = scoped.get("/admin/tenants/tenant/").content.decode()
    assert tenant_a.tenant.name in tenants and tenant_b.tenant.name not in tenants
    # Searching by the other tenant's number finds nothing either.
    found = scoped.get("/admin/messaging/message/", {"q": "+4915199990000"}).content.decode()
    assert short(theirs) not in found


def test_staff_without_a_scope_see_no_tenant_at_all(client, tenant_a):
    message = message_of(tenant_a)
    unscoped = staff(client)
    assert short(message) not in unscoped.get("/admin/messaging/message/").content.decode()


def test_full_numbers_need_the_view_recipient_permission(client, tenant_a):
    message = message_of(tenant_a)
    url = f"/admin/messaging/message/{message}/change/"
    masked = staff(client, tenants=[tenant_a.tenant]).get(url).content.decode()
    assert "+4915112345678" not in masked and "+491*******678" in masked
    client.logout()
    allowed = staff(
        client, tenants=[tenant_a.tenant], codenames=("view_message", "view_recipient")
    ).get(url)
    assert "+4915112345678" in allowed.content.decode()
