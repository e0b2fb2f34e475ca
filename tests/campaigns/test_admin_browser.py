"""The campaigns admin in a real browser (Debian's headless Chromium, driven by Selenium): a
business user's list of campaigns in every state, a draft's preflight with its invalid rows, a
completed campaign's final report, a pause from a campaign's page and a campaign added from a
CSV file. Screenshots go to ``var/artifacts/campaign-*.png``; the copies in
``docs/screenshots/admin-campaign-*.png`` (docs/concepts/campaigns.md) are taken from them."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import transaction
from django.utils import timezone

from campaigns import feeder
from campaigns.models import Campaign, CampaignState, HeldReason
from campaigns.services import campaign_pause, campaign_start
from devtools.servers import ROOT
from messaging.models import Message
from messaging.states import MessageState
from tenants.models import StaffScope
from tenants.services import portfolio_limit_learn

from ..factories import MessageTemplateFactory
from ..operations.test_admin_browser import browser, log_in  # noqa: F401 — the fixture
from ..waiting import wait_for
from .test_admin import audience, completed_campaign, make_campaign, row

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = ROOT / "var" / "artifacts"
LIMIT = 250


def released_and_sent(campaign: Campaign, state=MessageState.DELIVERED) -> int:
    """One feeder pass; what it released is put in ``state`` (as Meta's statuses would), so
    nothing of it waits to be sent when the transaction commits."""
    released = feeder.feed(campaign_id=campaign.pk).released
    Message.objects.filter(campaign=campaign, state=MessageState.QUEUED).update(
        state=state, attempts=1
    )
    return released


def shop(tenant, template) -> dict[str, Campaign]:
    """A tenant's campaigns in each state, as a business sending them would have them."""
    sender = tenant.senders.get()
    sender.display_phone_number = "+4930123456789"
    sender.messages_per_second = 100
    sender.save()
    made = {"completed": completed_campaign(tenant, template)}
    portfolio_limit_learn(tenant=tenant, business_id="", value=LIMIT, source="operator")
    with transaction.atomic():
        paused = make_campaign(
            tenant, template, audience(200, start=1000), key="p", name="Loyalty reminder"
        )
        campaign_start(campaign=paused, by="admin:ana")
        released_and_sent(paused)
        campaign_pause(campaign=paused, reason="customer care asked to wait", by="admin:ana")
    with transaction.atomic():
        held = make_campaign(
            tenant, template, audience(400, start=2000), key="h", name="Winter catalogue"
        )
        campaign_start(campaign=held, by="admin:ana")
        while released_and_sent(held, MessageState.SENT):
            pass
    with transaction.atomic():  # the preflight sees the limit reached: a warning
        invalid = [
            row("+4915"),  # too short
            row("4915100003001"),  # no country code
            {"to": "+4915100003002", "header.1": "A-2", "1": "Ana"},  # {{2}} missing
            row("+4915100003003", name="Ana\nMaria"),  # a newline in a parameter
            row("+4915100003000"),  # a duplicate of row 1
        ]
        spring = [row("+4915100003000"), *audience(40, start=3010), *invalid]
        made["draft"] = make_campaign(tenant, template, spring, key="d", name="Spring sale")
    send_at = (timezone.now() + timedelta(days=5)).replace(hour=7, minute=0, second=0)
    with transaction.atomic():
        scheduled = make_campaign(
            tenant,
            template,
            audience(120, start=4000),
            key="s",
            name="Black Friday early access",
            send_at=send_at,
        )
        campaign_start(campaign=scheduled, by="admin:ana")
    made.update(paused=paused, held=held, scheduled=scheduled)
    for campaign in made.values():
        campaign.refresh_from_db()
    return made


def business_user() -> User:
    """``oncall`` as a business user of one tenant: campaigns, no full numbers."""
    user = User.objects.create_user("oncall", password="night-shift", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_campaign", "change_campaign", "add_campaign", "view_message"]
        )
    )
    return user


def whole_page(driver, path) -> None:
    """Save the page whole (the window as tall as the page), then back to 1,400 by 1,300."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height, 1300), 6000))
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / path))
    driver.set_window_size(1400, 1300)
    assert (SHOTS / path).stat().st_size > 10_000


def test_a_business_user_follows_campaigns_in_a_real_browser(
    browser,  # noqa: F811 — the fixture imported above
    live_server,
    tenant_a,
):
    from selenium.webdriver.common.by import By

    template = MessageTemplateFactory(tenant=tenant_a.tenant, name="order_shipped")
    made = shop(tenant_a.tenant, template)
    assert made["held"].held_reason == HeldReason.MESSAGING_LIMIT
    assert made["scheduled"].state == CampaignState.SCHEDULED
    StaffScope.objects.create(user=business_user()).tenants.add(tenant_a.tenant)
    log_in(browser, live_server)

    # The list: a badge and a bar per campaign, fitting 1,400 px.
    browser.get(f"{live_server.url}/admin/campaigns/campaign/")
    bars = browser.find_elements(By.CSS_SELECTOR, "#result_list .campaign-progress")
    assert len(bars) == 5
    page = browser.page_source
    for state in ("completed", "paused", "running", "draft", "scheduled"):
        assert f">{state}<" in page
    assert "held at the limit" in page and "+493*******789" in page
    width = browser.execute_script(
        "const box = document.querySelector('#changelist .results');"
        "return [document.body.scrollWidth, box.scrollWidth - box.clientWidth];"
    )
    whole_page(browser, "campaign-list.png")
    assert width[0] <= 1400 and width[1] <= 0, width

    # The completed campaign: each segment as wide as its share (4 read of 12 rows).
    browser.find_element(By.PARTIAL_LINK_TEXT, "October orders").click()
    shares = browser.execute_script(
        "const bar = document.querySelector('#campaign-progress .campaign-progress > span');"
        "const whole = bar.getBoundingClientRect().width;"
        "return Object.fromEntries([...bar.children].map(s => "
        "[s.dataset.segment, s.getBoundingClientRect().width / whole]));"
    )
    assert shares.keys() == {"read", "delivered", "sent", "failed", "not sent"}
    assert shares["read"] == pytest.approx(4 / 12, abs=0.01)
    assert shares["not sent"] == pytest.approx(2 / 12, abs=0.01)
    report = browser.find_element(By.ID, "campaign-report").text
    assert "87.5 %" in report and "50.0 %" in report
    assert "Message undeliverable" in report and "billable" in report
    whole_page(browser, "campaign-report.png")

    # The draft: its preflight and the rows it would not send, masked, with the download.
    browser.get(f"{live_server.url}/admin/campaigns/campaign/{made['draft'].pk}/change/")
    preflight = browser.find_element(By.ID, "campaign-preflight").text
    for code in ("recipient_invalid", "variable_missing", "param_newline", "duplicate_recipient"):
        assert code in preflight
    assert "does not fit" in preflight
    rows = browser.find_element(By.ID, "campaign-invalid-rows").text
    assert "491*******001" in rows and "4915100003001" not in rows
    assert browser.find_element(By.LINK_TEXT, "Download every one (CSV)")
    whole_page(browser, "campaign-preflight.png")

    # Pause from the running campaign's page, with a reason.
    browser.get(f"{live_server.url}/admin/campaigns/campaign/{made['held'].pk}/change/")
    browser.find_element(By.CSS_SELECTOR, ".object-tools a.campaign-act-pause").click()
    browser.find_element(By.NAME, "reason").send_keys("the price in the text is wrong")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit][value=Pause]").click()
    wait_for(lambda: "/change/" in browser.current_url, 10, "the campaign's page again")
    assert "Pause: 1 campaign(s)." in browser.page_source
    held = Campaign.objects.get(pk=made["held"].pk)
    assert (held.state, held.state_changed_by) == ("paused", "admin:oncall")

    # Add a campaign from a CSV file: the same import and preflight as the API's.
    upload = SHOTS / "campaign-audience.csv"
    upload.write_text("to,header.1,1,2\n+4915100005000,B-1,Ben,B-1\n12345,B-2,Eva,B-2\n")
    browser.get(f"{live_server.url}/admin/campaigns/campaign/add/")
    browser.find_element(By.NAME, "name").send_keys("Reorder reminder")
    browser.find_element(By.CSS_SELECTOR, f"#id_template option[value='{template.pk}']").click()
    browser.find_element(By.NAME, "audience").send_keys(str(upload))
    browser.find_element(By.CSS_SELECTOR, "#campaign_form input[type=submit]").click()
    wait_for(lambda: "/change/" in browser.current_url, 20, "the new campaign's page")
    added = Campaign.objects.get(name="Reorder reminder")
    assert (added.rows_total, added.rows_invalid, added.state) == (2, 1, "draft")
    assert "2 rows, 1 invalid" in browser.page_source
