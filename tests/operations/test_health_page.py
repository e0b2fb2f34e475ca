"""Sender health on the operations page and in the sender admin: each business portfolio's
messaging limit beside the unique users it reached in the moving 24 hours, its senders'
quality ratings as badges (a scoped user sees only their tenants'); a sender's page shows its
portfolio's limit and its health history, read-only; the history has no add, change or
delete; an operator may set a portfolio's limit, recorded as theirs."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from messaging.models import Message, MessageKind
from tenants.models import HealthSource, PortfolioLimit, SenderHealthEvent, StaffScope
from tenants.selectors import portfolio_limit
from tenants.services import portfolio_limit_learn, sender_quality_learn

from ..factories import SenderNumberFactory, TenantFactory
from .test_admin_pages import OPERATIONS, words

pytestmark = pytest.mark.django_db


def reached(sender, users: int, first: int = 0) -> None:
    now = timezone.now()
    for index in range(first, first + users):
        Message.objects.create(
            tenant=sender.tenant,
            sender=sender,
            recipient=f"+4915100{index:06d}",
            kind=MessageKind.TEMPLATE,
            template_name="offer",
            template_language="en_US",
            idempotency_key=f"page-{sender.pk}-{index}",
            request_hash="-",
            state="delivered",
            attempts=1,
            provider_message_id=f"wamid.page-{sender.pk}-{index}",
            state_changed_at=now - timedelta(hours=1),
        )


@pytest.fixture
def portfolio():
    sender = SenderNumberFactory(tenant=TenantFactory(slug="acme"), business_id="506914307656634")
    portfolio_limit_learn(
        tenant=sender.tenant,
        business_id=sender.business_id,
        value="TIER_250",
        source=HealthSource.WEBHOOK,
    )
    sender_quality_learn(sender=sender, quality="YELLOW", source=HealthSource.POLL)
    reached(sender, 210)
    return sender


def limits_table(page: str) -> str:
    return words(page.split('id="messaging-limits"')[1].split("</table>")[0])


def test_the_operations_page_shows_limit_reach_and_quality(admin_client, portfolio):
    other = SenderNumberFactory(tenant=TenantFactory(slug="globex"))  # nothing known
    page = admin_client.get(OPERATIONS).content.decode()
    table = limits_table(page)
    assert "acme 506914307656634 250 TIER_250 · webhook" in table
    assert "210 (84 %) 40" in table  # reached, share of the limit, left
    assert f"{portfolio.phone_number_id} YELLOW" in table
    assert (
        f"globex (the tenant's) unknown not told yet 0 — {other.phone_number_id} not told" in table
    )
    row = page.split('id="messaging-limits"')[1]
    assert re.search(r'<td class="warn">210', row)  # over 80 % of the limit
    assert 'class="quality YELLOW"' in row


def test_a_portfolio_at_its_limit_is_shown_as_such(admin_client, portfolio):
    sibling = SenderNumberFactory(tenant=portfolio.tenant, business_id=portfolio.business_id)
    reached(sibling, 40, first=1000)  # other users, through the portfolio's other number
    table = limits_table(admin_client.get(OPERATIONS).content.decode())
    assert "250 (100 %) 0" in table


def test_a_scoped_user_sees_only_their_tenants_portfolios(client, portfolio):
    SenderNumberFactory(tenant=TenantFactory(slug="globex"), business_id="999000")
    user = User.objects.create_user("night-shift", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_message"))
    StaffScope.objects.create(user=user).tenants.add(portfolio.tenant)
    client.force_login(user)
    table = limits_table(client.get(OPERATIONS).content.decode())
    assert "acme" in table and "globex" not in table and "999000" not in table


def test_the_sender_page_shows_its_health_read_only(admin_client, portfolio):
    sender_quality_learn(sender=portfolio, quality="RED", source=HealthSource.WEBHOOK)
    page = admin_client.get(f"/admin/tenants/sendernumber/{portfolio.pk}/change/")
    text = words(page.content.decode())
    assert "250 unique users per 24 hours" in text
    assert "Quality rating YELLOW → RED Provider webhook" in text
    assert "Messaging limit 250 Provider webhook" in text
    assert 'name="quality_rating"' not in page.content.decode()  # the provider's, not typed in
    listing = admin_client.get("/admin/tenants/sendernumber/").content.decode()
    assert "quality-badge" in listing and "Red (low)" in listing


def test_the_health_history_is_append_only_in_the_admin(admin_client, portfolio):
    event = SenderHealthEvent.objects.first()
    assert admin_client.get("/admin/tenants/senderhealthevent/").status_code == 200
    assert admin_client.get("/admin/tenants/senderhealthevent/add/").status_code == 403
    page = admin_client.get(f"/admin/tenants/senderhealthevent/{event.pk}/change/")
    assert page.status_code == 200 and 'name="value"' not in page.content.decode()
    assert (
        admin_client.post(f"/admin/tenants/senderhealthevent/{event.pk}/delete/").status_code == 403
    )
    assert SenderHealthEvent.objects.filter(pk=event.pk).exists()


def test_an_operator_sets_a_portfolios_limit(admin_client):
    sender = SenderNumberFactory(business_id="777")
    response = admin_client.post(
        "/admin/tenants/portfoliolimit/add/",
        {"tenant": sender.tenant.pk, "business_id": "777", "tier": "2000"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert portfolio_limit(tenant=sender.tenant, business_id="777") == 2000
    row = PortfolioLimit.objects.get()
    assert row.source == "operator"
    assert SenderHealthEvent.objects.get().source == "operator"
    change = f"/admin/tenants/portfoliolimit/{row.pk}/change/"
    refused = admin_client.post(change, {"tier": "lots"})
    assert refused.status_code == 200 and "Not a messaging limit" in refused.content.decode()
    assert admin_client.post(change, {"tier": "TIER_10K"}).status_code == 302
    assert portfolio_limit(tenant=sender.tenant, business_id="777") == 10_000
