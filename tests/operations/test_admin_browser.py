"""The on-call admin in a real browser: Debian's headless Chromium, driven by Selenium, logs in,
opens a stalled message and saves a screenshot (``var/artifacts/stalled-message.png``)."""

import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from core.ids import short
from devtools.servers import ROOT
from messaging.models import Message
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, record

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body
from ..waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ARTIFACT = ROOT / "var" / "artifacts" / "stalled-message.png"


@pytest.fixture
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip(
            "Debian's chromium and chromium-driver are missing (make test installs them as root)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1400,1300",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def log_in(browser, live_server) -> None:
    """As ``oncall``; returns once the login's redirect has landed (a page asked for sooner
    would race the session cookie and land on the login page or the index)."""
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("oncall")
    browser.find_element(By.NAME, "password").send_keys("night-shift")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(lambda: "/login/" not in browser.current_url, 10, "the login to complete")


def test_an_on_call_person_opens_a_stalled_message(browser, live_server, tenant_a):
    from selenium.webdriver.common.by import By

    from tenants.services import sender_set_status

    User.objects.create_superuser("oncall", "oncall@example.com", "night-shift")
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    # The session's worker must not dispatch it meanwhile: this test writes its history itself.
    for sender in tenant_a.tenant.senders.all():
        sender_set_status(sender=sender, status="disabled", reason="test", by="test")
    message_id = tenant_a.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY="k"
    ).json()["id"]
    facts = [
        EventType.VALIDATED,
        EventType.SUBMIT_STARTED,
        EventType.ACCEPTED,
        EventType.STATUS_SENT,
    ]
    for fact in facts:
        record([NewEvent(message_id, fact, EventSource.PIPELINE)])
    Message.objects.filter(pk=message_id).update(provider_message_id="wamid.HBgLMTY1MDM4Nzk0")
    from messaging.track.stalls import stalls_mark

    stalls_mark(
        reasons={Message.objects.get(pk=message_id).pk: "sent_not_delivered"}, now=timezone.now()
    )

    log_in(browser, live_server)
    browser.get(f"{live_server.url}/admin/messaging/message/?stalled__exact=1")
    browser.find_element(By.PARTIAL_LINK_TEXT, short(message_id)).click()
    page = browser.page_source
    assert "Sent, not delivered in time" in page and "flagged_stalled" in page
    Path(ARTIFACT).parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACT))
    assert ARTIFACT.stat().st_size > 10_000


def test_contacts_and_what_meta_will_count_in_a_real_browser(browser, live_server, tenant_a):
    """2026: a contact known by number and BSUID (marketing stopped), and a priced message on
    the operations page — screenshots ``var/artifacts/contacts.png``, ``…/pricing.png``."""

    from messaging.track.contacts import contact_resolve, marketing_preference_record
    from tenants.services import sender_set_status

    User.objects.create_superuser("oncall", "oncall@example.com", "night-shift")
    for sender in tenant_a.tenant.senders.all():
        sender_set_status(sender=sender, status="disabled", reason="test", by="test")
    contact_resolve(
        tenant=tenant_a.tenant,
        wa_id="4915112345678",
        user_id="DE.13491208655302741918",
        username="@ana",
        profile_name="Ana",
    )
    marketing_preference_record(
        tenant=tenant_a.tenant, wa_id="4915112345678", stop=True, at=timezone.now()
    )
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    message_id = tenant_a.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY="p"
    ).json()["id"]
    Message.objects.filter(pk=message_id).update(
        pricing_type="regular", pricing_category="utility", priced_at=timezone.now()
    )
    log_in(browser, live_server)
    shots = ROOT / "var" / "artifacts"
    shots.mkdir(parents=True, exist_ok=True)
    browser.get(f"{live_server.url}/admin/messaging/contact/")
    page = browser.page_source
    assert "DE.13491208655302741918" in page and "stopped" in page
    assert "4915112345678" in page  # a superuser may see numbers (staff see them masked)
    browser.save_screenshot(str(shots / "contacts.png"))
    browser.get(f"{live_server.url}/admin/operations/?tenant={tenant_a.tenant.slug}")
    assert "what Meta will count" in browser.page_source
    browser.save_screenshot(str(shots / "pricing.png"))


def test_a_message_whose_ledger_was_pruned_says_so(browser, live_server, tenant_a):
    """Retention: the message keeps its summary and final state, and the page says when its
    history went and why — screenshot ``var/artifacts/pruned-ledger.png``."""
    from datetime import timedelta

    from messaging.track.retention import ledgers_prune
    from tenants.services import sender_set_status

    User.objects.create_superuser("oncall", "oncall@example.com", "night-shift")
    for sender in tenant_a.tenant.senders.all():
        sender_set_status(sender=sender, status="disabled", reason="test", by="test")
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    message_id = tenant_a.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY="old"
    ).json()["id"]
    for fact in (EventType.ACCEPTED, EventType.STATUS_DELIVERED, EventType.STATUS_READ):
        record([NewEvent(message_id, fact, EventSource.PROVIDER)])
    Message.objects.filter(pk=message_id).update(
        provider_message_id="wamid.HBgLMTY1MDM4Nzk1",
        state_changed_at=timezone.now() - timedelta(days=120),
    )
    assert ledgers_prune(tenants=[tenant_a.tenant]).messages == 1

    log_in(browser, live_server)
    browser.get(f"{live_server.url}/admin/messaging/message/{message_id}/change/")
    page = browser.page_source
    assert "The ledger was pruned for retention on" in page and "read" in page
    shot = ROOT / "var" / "artifacts" / "pruned-ledger.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


LISTS = [
    "/admin/messaging/message/",
    "/admin/messaging/contact/",
    "/admin/messaging/messageevent/",
    "/admin/webhooks/webhookdelivery/",
    "/admin/callbacks/callbackendpoint/",
    "/admin/callbacks/callbackevent/",
    "/admin/tenants/sendernumber/",
    "/admin/tenants/tenant/",
]


def test_the_lists_fit_1400_pixels(browser, live_server, client, tenant_a):
    """At 1,400 px wide, every list the on-call person uses shows all its columns: the page
    does not scroll sideways and neither does the table inside it (Django's list scrolls its
    table in a box of its own). Rows hold the longest things they show: a stall's reason, an
    error's title, a tenant's slug, an endpoint's health — screenshot
    ``var/artifacts/message-list.png``."""
    from callbacks.models import CallbackEndpoint
    from callbacks.services import Item, callbacks_enqueue
    from messaging.track.contacts import contact_resolve
    from tenants.services import sender_set_status

    from ..webhooks.helpers import envelope, post, status

    User.objects.create_superuser("oncall", "oncall@example.com", "night-shift")
    for sender in tenant_a.tenant.senders.all():
        sender_set_status(sender=sender, status="disabled", reason="test", by="test")
    template = MessageTemplateFactory(tenant=tenant_a.tenant, name="order_update_with_a_long_name")
    for i, (code, stall) in enumerate(
        [("131026", ""), ("131049", "accepted_no_status"), ("", "auth_ttl_passed")]
    ):
        message_id = tenant_a.client.post(
            "/api/v1/messages",
            body(template, to=f"+49151123456{i:02d}"),
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"wide-{i}",
        ).json()["id"]
        Message.objects.filter(pk=message_id).update(
            error_code=code,
            error_class="never_retry" if code else "",
            stalled=bool(stall),
            stalled_reason=stall,
            stalled_at=timezone.now() if stall else None,
        )
    contact_resolve(
        tenant=tenant_a.tenant, wa_id="4915112345600", user_id="DE.13491208655302741918"
    )
    endpoint, _ = CallbackEndpoint.objects.get_or_create(tenant=tenant_a.tenant)
    endpoint.url = "https://hooks.example.com/a/rather/long/path/to/the/waypost/callbacks"
    endpoint.event_types = ["message.read", "message.delivered", "message.failed"]
    endpoint.save()
    callbacks_enqueue(tenant_id=tenant_a.tenant.pk, items=[Item("message.read", {"n": 1})])
    number = tenant_a.tenant.senders.first().phone_number_id
    post(client, envelope(number, statuses=[status("wamid.HBgLMTY1MDM4Nzk0", "sent", 1)]))

    log_in(browser, live_server)
    widths = {}
    for path in LISTS:
        browser.get(f"{live_server.url}{path}")
        widths[path] = browser.execute_script(
            "const box = document.querySelector('#changelist .results');"
            "return [document.body.scrollWidth, box ? box.scrollWidth - box.clientWidth : 0];"
        )
        if path == LISTS[0]:
            shot = ROOT / "var" / "artifacts" / "message-list.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(shot))
    too_wide = {path: w for path, w in widths.items() if w[0] > 1400 or w[1] > 0}
    assert not too_wide, f"[page width, table overflow] past 1,400 px: {too_wide}"
