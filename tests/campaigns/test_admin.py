"""The campaigns admin through Django's test client: scoping by tenant, masked numbers (pages
and the CSV download), the preflight and the final report, actions with a reason that call
the services (and show their refusals), and the add form that runs the API's import."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from campaigns import feeder
from campaigns.models import Campaign, CampaignRow, CampaignState, RowOutcome
from campaigns.services import campaign_create, campaign_start
from core.ids import short
from messaging.models import Message
from tenants.models import StaffScope
from tenants.services import portfolio_limit_learn

from ..factories import MessageTemplateFactory

pytestmark = pytest.mark.django_db
LIST = "/admin/campaigns/campaign/"
ADD = f"{LIST}add/"
NUMBER, MASKED = "+4915100000002", "+491*******002"
UNPARSED, UNPARSED_MASKED = "4915100000009", "491*******009"  # no "+": refused, as given


def row(to, name="Ana", order="A-1"):
    return {"to": to, "header.1": order, "1": name, "2": order}


def audience(count, start=1):
    return [row(f"+49151{n:08d}", order=f"A-{n}") for n in range(start, start + count)]


def with_invalid_rows():
    """Four valid rows, then a duplicate, a number without its country code, a row missing
    ``{{2}}``."""
    return [
        *audience(4),
        row(NUMBER),  # a duplicate of row 2
        row(UNPARSED),
        {"to": "+4915100000007", "header.1": "A-7", "1": "Ana"},
    ]


def make_campaign(tenant, template, rows, key="c-1", **data):
    campaign, _ = campaign_create(
        tenant=tenant,
        idempotency_key=key,
        data={"template_id": str(template.pk), **data},
        rows=rows,
        audience_digest=key,
    )
    return campaign


# Message states for the completed example: (state, error code, pricing type) per row.
OUTCOMES = [
    ("read", "", "regular"),
    ("read", "", "regular"),
    ("read", "", "regular"),
    ("read", "", "free_customer_service"),
    ("delivered", "", "regular"),
    ("delivered", "", "regular"),
    ("delivered", "", "regular"),
    ("sent", "", "regular"),
    ("failed", "131026", ""),
    ("failed", "131049", ""),
]


def completed_campaign(tenant, template, *, key="done", name="October orders") -> Campaign:
    """A campaign with two invalid rows, started skipping them, released by the feeder, its
    messages put in their final states (``OUTCOMES``) and priced, and completed — in one
    transaction, so that no worker sees a message waiting to be sent."""
    sender = tenant.senders.get()
    sender.messages_per_second = 100
    sender.save()
    with transaction.atomic():
        rows = [*audience(len(OUTCOMES), start=100), row("12345"), row("+4915100000100")]
        campaign = make_campaign(tenant, template, rows, key=key, name=name)
        campaign_start(campaign=campaign, skip_invalid=True, by="admin:ana")
        assert feeder.feed(campaign_id=campaign.pk).released == len(OUTCOMES)
        messages = Message.objects.filter(campaign=campaign).order_by("recipient")
        for message, (state, code, pricing) in zip(messages, OUTCOMES, strict=True):
            Message.objects.filter(pk=message.pk).update(
                state=state,
                attempts=1,
                error_code=code,
                error_title="Message failed" if code else "",
                pricing_type=pricing,
                pricing_category="utility" if pricing else "",
                billable=pricing == "regular" if pricing else None,
            )
        assert feeder.feed(campaign_id=campaign.pk).state == CampaignState.COMPLETED
    campaign.refresh_from_db()
    return campaign


def staff(
    client,
    tenant,
    *,
    codenames=("view_campaign", "change_campaign", "add_campaign", "view_message"),
):
    user = User.objects.create_user(f"staff{User.objects.count()}", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    StaffScope.objects.create(user=user).tenants.add(tenant)
    client.force_login(user)
    return client


@pytest.fixture
def template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


@pytest.fixture
def staff_a(client, tenant_a):
    return staff(client, tenant_a.tenant)


def page_of(client, campaign) -> str:
    answer = client.get(f"{LIST}{campaign.pk}/change/")
    assert answer.status_code == 200
    return answer.content.decode()


def act(client, campaign, name, **fields):
    return client.post(f"{LIST}{campaign.pk}/act/{name}/", {"apply": "1", **fields})


def shown_messages(answer) -> list[str]:
    return [str(m) for m in answer.wsgi_request._messages]


# --- the list and scoping ------------------------------------------------------------------------


def test_the_list_shows_state_progress_rows_and_a_masked_sender(staff_a, tenant_a, template):
    campaign = make_campaign(tenant_a.tenant, template, with_invalid_rows(), name="Spring sale")
    sender = tenant_a.tenant.senders.get()
    page = staff_a.get(LIST).content.decode()
    assert "Spring sale" in page and short(campaign.pk) in page
    assert ">draft<" in page  # the state badge
    assert 'class="campaign-progress"' in page and "0.0 %" in page
    assert "3 invalid" in page and template.name in page
    assert sender.display_phone_number not in page and "+155*****111" in page
    assert '<option value="pause">' in page  # the actions, for a user who may act


def test_the_list_filters_by_state_and_finds_by_name(admin_client, tenant_a, template):
    make_campaign(tenant_a.tenant, template, audience(2), key="a", name="Spring sale")
    done = completed_campaign(tenant_a.tenant, template)
    completed = admin_client.get(LIST, {"state__exact": "completed"}).content.decode()
    assert done.name in completed and "Spring sale" not in completed
    found = admin_client.get(LIST, {"q": "spring"}).content.decode()
    assert "Spring sale" in found and done.name not in found
    by_id = admin_client.get(LIST, {"q": str(done.pk)}).content.decode()
    assert done.name in by_id and "Spring sale" not in by_id


def test_staff_see_download_and_act_on_their_tenants_campaigns_only(
    staff_a, tenant_a, tenant_b, template
):
    mine = make_campaign(tenant_a.tenant, template, audience(2), name="Ours")
    theirs = make_campaign(
        tenant_b.tenant,
        MessageTemplateFactory(tenant=tenant_b.tenant),
        with_invalid_rows(),
        name="Theirs",
    )
    listing = staff_a.get(LIST).content.decode()
    assert "Ours" in listing and "Theirs" not in listing
    assert staff_a.get(f"{LIST}{theirs.pk}/change/").status_code == 302  # not found for them
    assert staff_a.get(f"{LIST}{theirs.pk}/invalid-rows.csv").status_code == 404
    assert act(staff_a, theirs, "cancel", reason="x").status_code == 404
    staff_a.post(
        LIST,
        {"action": "cancel", "_selected_action": [str(theirs.pk)], "apply": "1", "reason": "x"},
    )
    theirs.refresh_from_db()
    assert theirs.state == CampaignState.DRAFT
    filters = staff_a.get(LIST).content.decode()
    assert not re.search(rf"tenant__id__exact={tenant_b.tenant.pk}\b", filters)
    assert short(mine.pk) in listing


def test_what_a_user_typed_is_escaped_on_the_list_and_the_page(admin_client, tenant_a, template):
    campaign = make_campaign(
        tenant_a.tenant, template, [row("+4915100000001", name="<i>Ana</i>")], name="<b>x</b>"
    )
    for page in (admin_client.get(LIST).content.decode(), page_of(admin_client, campaign)):
        assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


# --- the page: preflight, rows not sent, masking -------------------------------------------------


def test_the_page_shows_the_preflight_with_errors_and_the_messaging_limit(
    staff_a, tenant_a, template
):
    portfolio_limit_learn(tenant=tenant_a.tenant, business_id="", value=3, source="operator")
    campaign = make_campaign(tenant_a.tenant, template, with_invalid_rows())
    page = page_of(staff_a, campaign)
    assert 'id="campaign-preflight"' in page
    for code in ("duplicate_recipient", "recipient_invalid", "variable_missing"):
        assert f"<code>{code}</code>" in page
    assert "The same recipient as row 2." in page  # an example of what the code means
    assert "does not fit" in page and "beyond_messaging_limit" in page
    assert "Failed: some rows are invalid" in page
    assert "Final report" not in page  # a draft has none yet


def test_rows_not_sent_are_masked_on_the_page_and_in_the_csv(client, tenant_a, template):
    campaign = make_campaign(tenant_a.tenant, template, with_invalid_rows())
    viewer = staff(client, tenant_a.tenant)
    page = page_of(viewer, campaign)
    assert MASKED in page and NUMBER not in page
    assert UNPARSED_MASKED in page and UNPARSED not in page
    download = viewer.get(f"{LIST}{campaign.pk}/invalid-rows.csv")
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0] == ["row", "recipient", "outcome", "error_code", "error_message"]
    assert [(r[0], r[1], r[3]) for r in rows[1:]] == [
        ("5", MASKED, "duplicate_recipient"),
        ("6", UNPARSED_MASKED, "recipient_invalid"),
        ("7", "+491*******007", "variable_missing"),
    ]


def test_numbers_are_shown_in_full_with_the_permission(client, tenant_a, template):
    campaign = make_campaign(tenant_a.tenant, template, with_invalid_rows())
    viewer = staff(client, tenant_a.tenant, codenames=("view_campaign", "view_recipient"))
    page = page_of(viewer, campaign)
    assert NUMBER in page and UNPARSED in page
    download = viewer.get(f"{LIST}{campaign.pk}/invalid-rows.csv")
    assert NUMBER in b"".join(download.streaming_content).decode()


def test_only_the_first_hundred_rows_not_sent_are_on_the_page(admin_client, tenant_a, template):
    rows = [row("12345", order=f"A-{n}") for n in range(130)]
    campaign = make_campaign(tenant_a.tenant, template, rows)
    page = page_of(admin_client, campaign)
    assert "130 rows not sent — the first 100 below" in page
    table = page[page.index('id="campaign-invalid-rows"') :]
    assert table.count("<code>recipient_invalid</code>") == 100
    download = admin_client.get(f"{LIST}{campaign.pk}/invalid-rows.csv")
    assert b"".join(download.streaming_content).decode().count("recipient_invalid") == 130


# --- the final report ----------------------------------------------------------------------------


def test_a_completed_campaign_has_its_final_report(staff_a, tenant_a, template):
    campaign = completed_campaign(tenant_a.tenant, template)
    page = page_of(staff_a, campaign)
    report = page[page.index('id="campaign-report"') :]
    assert "Final report" in page
    assert "87.5 %" in report and "delivered (7 of 8)" in report  # of what Meta sent
    assert "50.0 %" in report and "read (4 of 8)" in report
    # Failures by code, with what each means and who must act (the provider's table).
    assert "<code>131026</code>" in report and "Message undeliverable" in report
    assert "not on WhatsApp" in report and "The recipient" in report
    assert "<code>131049</code>" in report
    # Pricing: 7 regular (billable), 1 free, by category and type.
    assert '<code>regular</code></td><td>billable</td><td class="n">7</td>' in report
    assert '<code>free_customer_service</code></td><td>free</td><td class="n">1</td>' in report
    # The progress bar: one segment per group, the percentage done.
    assert 'data-segment="read"' in page and 'data-segment="failed"' in page
    # Every row that was to be sent was (the two skipped never were): done.
    assert 'data-segment="not sent"' in page and "100.0 %" in page
    # Its messages, one click away (the messages' list, filtered by the campaign).
    messages = staff_a.get(f"/admin/messaging/message/?campaign__id__exact={campaign.pk}")
    assert messages.status_code == 200
    listed = messages.content.decode()
    assert all(short(m.pk) in listed for m in Message.objects.filter(campaign=campaign))


# --- actions -------------------------------------------------------------------------------------


def test_start_asks_first_and_refuses_invalid_rows_unless_skipped(staff_a, tenant_a, template):
    campaign = make_campaign(tenant_a.tenant, template, with_invalid_rows())
    page = page_of(staff_a, campaign)
    assert f"{LIST}{campaign.pk}/act/start/" in page and "/act/pause/" not in page
    asked = staff_a.get(f"{LIST}{campaign.pk}/act/start/").content.decode()
    assert "Skip the invalid rows" in asked and "found 3 invalid rows" in asked
    refused = act(staff_a, campaign, "start")
    assert refused.status_code == 302
    assert any("3 invalid rows" in m for m in shown_messages(refused))
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.DRAFT
    started = act(staff_a, campaign, "start", skip_invalid="on")
    assert started["Location"] == f"{LIST}{campaign.pk}/change/"
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.RUNNING and campaign.skip_invalid
    assert campaign.state_changed_by == f"admin:{User.objects.get(is_staff=True).username}"
    assert CampaignRow.objects.filter(campaign=campaign, outcome=RowOutcome.SKIPPED).count() == 3


def test_pause_resume_and_cancel_need_a_reason_and_record_it(staff_a, tenant_a, template):
    campaign = make_campaign(tenant_a.tenant, template, audience(3))
    campaign_start(campaign=campaign, by="test")
    unanswered = act(staff_a, campaign, "pause")
    assert unanswered.status_code == 200 and "This field is required" in unanswered.content.decode()
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.RUNNING
    act(staff_a, campaign, "pause", reason="wrong price in the text")
    campaign.refresh_from_db()
    assert (campaign.state, campaign.state_reason) == ("paused", "wrong price in the text")
    assert campaign.state_changed_by.startswith("admin:staff")
    page = page_of(staff_a, campaign)
    assert "/act/resume/" in page and "/act/pause/" not in page
    act(staff_a, campaign, "resume", reason="fixed")
    campaign.refresh_from_db()
    assert (campaign.state, campaign.state_reason) == ("running", "fixed")
    act(staff_a, campaign, "cancel", reason="wrong list")
    campaign.refresh_from_db()
    assert (campaign.state, campaign.state_reason) == ("cancelled", "wrong list")


def test_a_refused_change_is_an_error_message_not_a_500(staff_a, tenant_a, template):
    campaign = completed_campaign(tenant_a.tenant, template)
    answer = act(staff_a, campaign, "pause", reason="too late")
    assert answer.status_code == 302
    assert shown_messages(answer) == ["October orders: A completed campaign cannot become paused."]
    listed = staff_a.post(
        LIST,
        {"action": "cancel", "_selected_action": [str(campaign.pk)], "apply": "1", "reason": "x"},
        follow=True,
    )
    assert listed.status_code == 200
    assert "A completed campaign cannot become cancelled." in listed.content.decode()
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.COMPLETED


def test_list_actions_ask_for_a_reason_then_act_on_each(staff_a, tenant_a, template):
    campaigns = [
        make_campaign(tenant_a.tenant, template, audience(2), key=f"k{n}", name=f"C{n}")
        for n in range(2)
    ]
    for campaign in campaigns:
        campaign_start(campaign=campaign, by="test")
    selected = [str(c.pk) for c in campaigns]
    asked = staff_a.post(LIST, {"action": "pause", "_selected_action": selected})
    assert asked.status_code == 200 and "Reason" in asked.content.decode()
    assert {c.state for c in Campaign.objects.all()} == {CampaignState.RUNNING}
    staff_a.post(
        LIST,
        {"action": "pause", "_selected_action": selected, "apply": "1", "reason": "holiday"},
    )
    assert set(Campaign.objects.values_list("state", "state_reason")) == {("paused", "holiday")}


def test_view_only_staff_see_campaigns_but_cannot_act(client, tenant_a, template):
    campaign = make_campaign(tenant_a.tenant, template, audience(2))
    viewer = staff(client, tenant_a.tenant, codenames=("view_campaign",))
    page = page_of(viewer, campaign)
    assert "/act/start/" not in page
    assert 'value="pause"' not in viewer.get(LIST).content.decode()  # no list actions
    assert act(viewer, campaign, "start").status_code == 403
    assert viewer.get(ADD).status_code == 403
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.DRAFT


# --- the add form --------------------------------------------------------------------------------


def csv_file(rows, name="audience.csv"):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode(), content_type="text/csv")


def add_form(client, **overrides):
    """The add page's fields as the browser would send them (the form token it was shown)."""
    page = client.get(ADD)
    form = page.context["form"]
    return {"form_token": form.initial["form_token"], **overrides}


def test_a_business_user_adds_a_campaign_from_a_csv(staff_a, tenant_a, template):
    send_at = (timezone.now() + timedelta(days=10)).replace(second=0, microsecond=0)
    fields = add_form(
        staff_a,
        tenant=tenant_a.tenant.pk,
        name="Black Friday",
        template=template.pk,
        send_at=f"{send_at:%Y-%m-%dT%H:%M}",
        window_start="09:00",
        window_end="20:00",
        window_days=["1", "2", "3", "4", "5", "6"],
        messages_per_second="5",
        ttl_seconds="86400",
    )
    answer = staff_a.post(ADD, {**fields, "audience": csv_file(with_invalid_rows())})
    campaign = Campaign.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"{LIST}{campaign.pk}/change/"
    assert (campaign.name, campaign.template, campaign.state) == ("Black Friday", template, "draft")
    assert (campaign.rows_total, campaign.rows_invalid) == (7, 3)
    assert campaign.send_at == send_at
    assert (campaign.window_start.hour, campaign.window_end.hour) == (9, 20)
    assert campaign.window_days == "123456"
    assert (campaign.messages_per_second, campaign.ttl_seconds) == (5, 86400)
    assert campaign.idempotency_key.startswith("admin:")
    assert any("7 rows, 3 invalid" in m for m in shown_messages(answer))
    page = page_of(staff_a, campaign)
    assert "duplicate_recipient" in page and "09:00\N{EN DASH}20:00" in page


def test_the_same_form_sent_twice_makes_one_campaign(staff_a, tenant_a, template):
    fields = add_form(staff_a, tenant=tenant_a.tenant.pk, template=template.pk)
    first = staff_a.post(ADD, {**fields, "audience": csv_file(audience(3))})
    again = staff_a.post(ADD, {**fields, "audience": csv_file(audience(3))})
    assert Campaign.objects.count() == 1
    assert first["Location"] == again["Location"]
    assert any("already sent" in m for m in shown_messages(again))
    fresh = add_form(staff_a, tenant=tenant_a.tenant.pk, template=template.pk)
    staff_a.post(ADD, {**fresh, "audience": csv_file(audience(3))})
    assert Campaign.objects.count() == 2  # the same audience from a new form: a new campaign


def test_the_add_form_offers_the_users_tenants_only_and_refuses_a_bad_audience(
    staff_a, tenant_a, tenant_b, template
):
    theirs = MessageTemplateFactory(tenant=tenant_b.tenant, name="their_template")
    MessageTemplateFactory(tenant=tenant_a.tenant, name="still_pending", status="PENDING")
    page = staff_a.get(ADD).content.decode()
    assert template.name in page and "their_template" not in page and "still_pending" not in page
    assert tenant_b.tenant.slug not in page
    forged = add_form(staff_a, tenant=tenant_a.tenant.pk, template=theirs.pk)
    answer = staff_a.post(ADD, {**forged, "audience": csv_file(audience(1))})
    assert answer.status_code == 200 and "Select a valid choice" in answer.content.decode()
    no_column = add_form(staff_a, tenant=tenant_a.tenant.pk, template=template.pk)
    answer = staff_a.post(
        ADD, {**no_column, "audience": csv_file([{"phone_number": "+4915100000001", "1": "A"}])}
    )
    assert answer.status_code == 200
    assert "needs a &#x27;to&#x27; column" in answer.content.decode()
    window = add_form(
        staff_a,
        tenant=tenant_a.tenant.pk,
        template=template.pk,
        window_start="22:00",
        window_end="06:00",
    )
    answer = staff_a.post(ADD, {**window, "audience": csv_file(audience(1))})
    assert answer.status_code == 200 and "crossing midnight" in answer.content.decode()
    assert not Campaign.objects.exists()
