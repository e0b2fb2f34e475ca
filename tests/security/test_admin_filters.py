"""The admin's filter sidebars and form choices are scoped like its lists (issue 18 §3.4):
Django's related filter lists every row of the related table — every tenant's slug, every
sender's number id — whatever the page's queryset. Staff scoped to tenant A must find
neither tenant B's slug nor B's sender id anywhere in any admin page they can open."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User

from messaging.models import Message
from tenants.models import SenderNumber, StaffScope
from tenants.scoping import TenantScopedAdmin

from ..factories import MessageTemplateFactory, SenderNumberFactory
from ..messaging.helpers import body

pytestmark = pytest.mark.django_db
THEIR_NUMBER_ID = "987654321012345"


def a_message(tenant_client, key: str) -> Message:
    template = MessageTemplateFactory(tenant=tenant_client.tenant)
    message_id = tenant_client.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY=key
    ).json()["id"]
    return Message.objects.get(pk=message_id)


@pytest.fixture
def two_tenants(tenant_a, tenant_b):
    """Both tenants with a message, a template, an API key (conftest) and two senders; B's
    main sender has a number id that appears nowhere else."""
    SenderNumber.objects.filter(tenant=tenant_b.tenant).update(phone_number_id=THEIR_NUMBER_ID)
    for tenant_client in (tenant_a, tenant_b):
        SenderNumberFactory(tenant=tenant_client.tenant)
        a_message(tenant_client, "k")
    return tenant_a, tenant_b


@pytest.fixture
def staff_a(client, two_tenants):
    """Staff scoped to A with every view permission, and add permission where staff add."""
    tenant_a, _ = two_tenants
    user = User.objects.create_user("staff-a", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__startswith="view_"),
        *Permission.objects.filter(codename__in=["add_apikey", "add_messagetemplate"]),
    )
    StaffScope.objects.create(user=user).tenants.add(tenant_a.tenant)
    client.force_login(user)
    return client


def leaks(page: str, tenant_b) -> list[str]:
    found = [s for s in (tenant_b.tenant.slug, THEIR_NUMBER_ID) if s in page.lower()]
    found += [s.phone_number_id for s in tenant_b.tenant.senders.all() if s.phone_number_id in page]
    return found


def test_no_changelist_names_another_tenant_or_its_senders(staff_a, two_tenants):
    tenant_a, tenant_b = two_tenants
    opened = []
    for model, model_admin in admin.site._registry.items():
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        answer = staff_a.get(url)
        if answer.status_code == 403:
            assert not isinstance(model_admin, TenantScopedAdmin), url
            continue
        assert answer.status_code == 200, url
        assert leaks(answer.content.decode(), tenant_b) == [], url
        opened.append(url)
    assert "/admin/messaging/message/" in opened and "/admin/tenants/sendernumber/" in opened
    # They do see their own tenant's.
    page = staff_a.get("/admin/tenants/sendernumber/").content.decode()
    assert all(s.phone_number_id in page for s in tenant_a.tenant.senders.all())


@pytest.mark.parametrize(
    "query",
    ["?tenant__id__exact={b}", "?sender__id__exact={sender}"],
)
def test_a_filter_naming_another_tenant_shows_nothing_of_it(staff_a, two_tenants, query):
    _, tenant_b = two_tenants
    sender = tenant_b.tenant.senders.first()
    page = staff_a.get(
        "/admin/messaging/message/" + query.format(b=tenant_b.tenant.pk, sender=sender.pk)
    )
    assert leaks(page.content.decode(), tenant_b) == []


def test_the_operations_page_and_the_add_forms_offer_only_their_tenants(staff_a, two_tenants):
    _, tenant_b = two_tenants
    for url in (
        "/admin/operations/",
        "/admin/tenants/apikey/add/",
        "/admin/templates_registry/messagetemplate/add/",
    ):
        answer = staff_a.get(url)
        assert answer.status_code == 200, url
        assert leaks(answer.content.decode(), tenant_b) == [], url
