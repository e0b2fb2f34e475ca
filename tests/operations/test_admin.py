"""The on-call admin through Django's test client: scoping by tenant, the message page, actions
with a required reason, masked numbers, the operations page."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from core.ids import short
from messaging.models import Message
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, record
from operations.reconciler import RULES
from tenants.models import ApiKey, StaffScope, Tenant

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body

pytestmark = pytest.mark.django_db
LIST = "/admin/messaging/message/"


def make_message(tenant_client, key="k", state_facts=()):
    template = MessageTemplateFactory(tenant=tenant_client.tenant)
    message_id = tenant_client.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY=key
    ).json()["id"]
    if state_facts:
        record([NewEvent(message_id, t, EventSource.PIPELINE) for t in state_facts])
    return Message.objects.get(pk=message_id)


@pytest.fixture
def staff_a(client, tenant_a):
    """A staff user who may see tenant A only, with the admin's view permissions."""
    user = User.objects.create_user("oncall", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_message", "change_message", "view_messageevent", "view_tenant"]
        )
    )
    StaffScope.objects.create(user=user).tenants.add(tenant_a.tenant)
    client.force_login(user)
    return client


def test_staff_see_and_act_on_their_tenants_only(staff_a, tenant_a, tenant_b):
    mine = make_message(tenant_a, "a")
    theirs = make_message(tenant_b, "b")
    page = staff_a.get(LIST).content.decode()
    assert short(mine.pk) in page and short(theirs.pk) not in page
    assert staff_a.get(f"{LIST}{theirs.pk}/change/").status_code == 302  # not found for them
    staff_a.post(
        LIST,
        {"action": "cancel", "_selected_action": [str(theirs.pk)], "apply": "1", "reason": "x"},
    )
    assert Message.objects.get(pk=theirs.pk).state == "queued"
    ops = staff_a.get("/admin/operations/").content.decode()
    assert tenant_a.tenant.slug in ops and tenant_b.tenant.slug not in ops


def test_numbers_are_masked_unless_a_permission_says_otherwise(admin_client, staff_a, tenant_a):
    message = make_message(tenant_a)
    for url in (f"{LIST}{message.pk}/change/", LIST):
        page = staff_a.get(url).content.decode()
        assert "+491*******678" in page and "+4915112345678" not in page
    full = admin_client.get(f"{LIST}{message.pk}/change/").content.decode()  # superuser
    assert "+4915112345678" in full


def test_the_message_page_shows_summary_next_step_and_timeline(admin_client, tenant_a):
    message = make_message(tenant_a, state_facts=[EventType.SUBMIT_STARTED, EventType.ACCEPTED])
    page = admin_client.get(f"{LIST}{message.pk}/change/").content.decode()
    assert "what next" in page.lower() and "Waits for Meta&#x27;s status" in page
    order = [
        page.index(f"<strong>{t}</strong>") for t in ("requested", "submit_started", "accepted")
    ]
    assert order == sorted(order)
    assert "<details>" in page  # payloads folded
    assert "state_rank" not in page and "request_hash" not in page


def test_actions_require_a_reason_and_record_it_with_the_user(admin_client, tenant_a):
    message = make_message(tenant_a)
    ask = admin_client.post(LIST, {"action": "cancel", "_selected_action": [str(message.pk)]})
    assert ask.status_code == 200 and "Reason" in ask.content.decode()
    assert Message.objects.get(pk=message.pk).state == "queued"  # nothing done yet
    done = admin_client.post(
        LIST,
        {
            "action": "cancel",
            "_selected_action": [str(message.pk)],
            "apply": "1",
            "reason": "customer asked",
        },
    )
    assert done.status_code == 302
    event = Message.objects.get(pk=message.pk).events.get(type="cancelled")
    assert event.source == "operator" and event.detail["reason"] == "customer asked — admin"


def test_retrying_an_unknown_submit_needs_the_duplicate_consent(admin_client, tenant_a):
    message = make_message(tenant_a, state_facts=[EventType.SUBMIT_UNKNOWN])
    form = {"action": "retry_now", "_selected_action": [str(message.pk)], "apply": "1"}
    refused = admin_client.post(LIST, {**form, "reason": "checked"})
    assert refused.status_code == 200 and "possible duplicate" in refused.content.decode()
    assert Message.objects.get(pk=message.pk).state == "unknown"
    admin_client.post(LIST, {**form, "reason": "checked", "accept_duplicate": "on"})
    message.refresh_from_db()
    assert (message.state, message.round) == ("queued", 1)


def test_mark_resolved_clears_a_stall_with_the_reason(admin_client, tenant_a):
    message = make_message(tenant_a, state_facts=[EventType.ACCEPTED, EventType.STATUS_SENT])
    Message.objects.filter(pk=message.pk).update(
        stalled=True, stalled_reason="sent_not_delivered", stalled_at=timezone.now()
    )
    admin_client.post(
        LIST,
        {
            "action": "mark_resolved",
            "_selected_action": [str(message.pk)],
            "apply": "1",
            "reason": "user blocked us",
        },
    )
    message.refresh_from_db()
    assert not message.stalled and message.state == "sent"
    assert message.events.get(type="stall_cleared").detail["resolved"] == "user blocked us — admin"


def test_filters_and_search(admin_client, tenant_a):
    message = make_message(tenant_a, state_facts=[EventType.ACCEPTED])
    Message.objects.filter(pk=message.pk).update(
        provider_message_id="wamid.find-me", created_at=timezone.now() - timedelta(days=2)
    )
    for query in ("?q=wamid.find-me", f"?q={message.pk}", "?q=%2B4915112345678", "?age=7d"):
        assert short(message.pk) in admin_client.get(LIST + query).content.decode(), query
    assert short(message.pk) not in admin_client.get(LIST + "?age=1h").content.decode()


def test_the_operations_page(admin_client, tenant_a):
    make_message(tenant_a, state_facts=[EventType.REJECTED])
    page = admin_client.get("/admin/operations/").content.decode()
    for heading in (
        "Stalled now",
        "Messages by state",
        "Top error codes",
        "Webhooks",
        "Queues",
        "Senders blocked",
        "Callbacks",
    ):
        assert heading in page
    assert "send.0" in page and "bulk.0" in page  # the shared lanes, not one queue per tenant
    assert f"tenant.{tenant_a.tenant.slug}" not in page
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(dedicated_queue=True)
    page = admin_client.get("/admin/operations/").content.decode()
    assert f"tenant.{tenant_a.tenant.slug}" in page  # a queue of its own
    for rule in RULES:  # the reconciler's rules, from its table
        assert f"<td>{rule.name}</td>" in page.replace("&#x27;", "'")
    assert "Operations" in admin_client.get("/admin/").content.decode()


def test_api_keys_are_made_in_the_admin_and_shown_once(admin_client, tenant_a):
    answer = admin_client.post(
        "/admin/tenants/apikey/add/", {"tenant": tenant_a.tenant.pk, "name": "ops"}, follow=True
    )
    assert "Copy it now" in answer.content.decode()
    assert ApiKey.objects.filter(tenant=tenant_a.tenant, name="ops").exists()


def test_2026_identity_pricing_and_expiry_on_the_message_page(staff_a, tenant_a):
    message = make_message(tenant_a, "bsuid")
    Message.objects.filter(pk=message.pk).update(
        recipient_user_id="US.13491208655302741918",
        pricing_type="regular",
        pricing_category="utility",
        pricing_model="PMP",
        expires_at=timezone.now() + timedelta(minutes=10),
    )
    page = staff_a.get(f"{LIST}{message.pk}/change/").content.decode()
    assert "US.13491208655302741918" in page and "regular · utility · PMP" in page
    found = staff_a.get(LIST, {"q": "US.13491208655302741918"}).content.decode()
    assert short(message.pk) in found


def test_contacts_show_the_bsuid_and_mask_the_number(staff_a, tenant_a):
    from messaging.track.contacts import contact_resolve, marketing_preference_record

    user = User.objects.get(username="oncall")
    user.user_permissions.add(Permission.objects.get(codename="view_contact"))
    contact = contact_resolve(
        tenant=tenant_a.tenant, wa_id="4915112345678", user_id="DE.1234567890"
    )
    marketing_preference_record(
        tenant=tenant_a.tenant, wa_id=contact.wa_id, stop=True, at=timezone.now()
    )
    page = staff_a.get("/admin/messaging/contact/").content.decode()
    assert "DE.1234567890" in page and "4915112345678" not in page and "stopped" in page


def test_the_operations_page_counts_what_the_invoice_will(admin_client, tenant_a):
    message = make_message(tenant_a, "priced")
    Message.objects.filter(pk=message.pk).update(
        pricing_type="regular",
        pricing_category="utility",
        priced_at=timezone.now(),
        recipient_country="DE",
    )
    page = admin_client.get("/admin/operations/", {"tenant": tenant_a.tenant.slug})
    text = page.content.decode()
    assert "what Meta will count" in text
    row = f"<td>utility</td><td><code>{message.sender.phone_number_id}</code></td><td>DE</td>"
    assert row in text


def test_the_operations_page_shows_a_chosen_tenants_thresholds(admin_client, tenant_a):
    tenant_a.tenant.stall_sent_seconds = 300
    tenant_a.tenant.save(update_fields=["stall_sent_seconds"])
    page = admin_client.get("/admin/operations/", {"tenant": tenant_a.tenant.slug})
    text = page.content.decode().replace("&#x27;", "'")
    assert "the tenant's stall_sent_seconds: 5 min (default 15 min)" in text
