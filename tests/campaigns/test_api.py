"""The campaign API in process: create (JSON rows, CSV upload), preflight, idempotency, the
state machine, the report — and one feeder pass at a time, driven by hand (no worker)."""

import csv
import io
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from campaigns import feeder
from campaigns.models import Campaign, CampaignRow, CampaignState, HeldReason, RowOutcome
from messaging.models import Contact, Message, Suppression
from messaging.send import dispatch, pipeline
from messaging.send.windows import SendWindow
from messaging.states import MessageState
from tenants.services import portfolio_limit_learn

from ..factories import MessageTemplateFactory

URL = "/api/v1/campaigns"


@pytest.fixture
def template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


def row(to="+4915112345678", name="Ana", order="A-1", **extra):
    return {"to": to, "header.1": order, "1": name, "2": order, **extra}


def numbers(count, start=0):
    return [f"+49151{n:08d}" for n in range(start, start + count)]


def create(api, template, audience, key="c-1", **fields):
    body = {"template": {"name": template.name, "language": template.language}}
    body |= {"audience": audience} | fields
    return api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_json_rows_are_imported_and_preflighted(api, template):
    response = create(api, template, [row(to=to) for to in numbers(5)], name="Spring")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["state"] == "draft" and data["name"] == "Spring"
    assert data["preflight_status"] == "passed" and data["rows_total"] == 5
    assert data["preflight"]["valid"] == 5 and data["preflight"]["invalid"] == 0
    assert data["progress"]["counts"]["pending"] == 5
    assert not Message.objects.exists()  # a draft sends nothing


def test_every_invalid_row_is_reported_with_its_code_and_nothing_is_sent(api, template, tenant_a):
    Suppression.objects.create(tenant=tenant_a.tenant, recipient="+4915100000003")
    audience = [
        row(to="+4915100000001"),
        row(to="12345"),  # no country code
        row(to="+4915100000001"),  # a duplicate of row 1
        row(to="+4915100000003"),  # suppressed
        {"to": "+4915100000004", "header.1": "A-4", "1": "Ana"},  # {{2}} missing
        row(to="+4915100000005", name="Ana\nMaria"),  # a newline in a parameter
    ]
    response = create(api, template, audience)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["preflight_status"] == "failed"
    assert data["preflight"]["valid"] == 1 and data["preflight"]["invalid"] == 5
    report = api.get(f"{URL}/{data['id']}/report").json()
    codes = {r["row"]: r["error_code"] for r in report["invalid_rows"]}
    assert codes == {
        2: "recipient_invalid",
        3: "duplicate_recipient",
        4: "recipient_suppressed",
        5: "variable_missing",
        6: "param_newline",
    }
    duplicate = next(r for r in report["invalid_rows"] if r["row"] == 3)
    assert "row 1" in duplicate["error_message"]
    download = api.get(f"{URL}/{data['id']}/invalid-rows.csv")
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert lines[0] == ["row", "recipient", "outcome", "error_code", "error_message"]
    assert [line[0] for line in lines[1:]] == ["2", "3", "4", "5", "6"]
    # A failed preflight does not start, unless the invalid rows are skipped explicitly.
    refused = api.post(f"{URL}/{data['id']}/start", {}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "preflight_failed"
    started = api.post(f"{URL}/{data['id']}/start", {"skip_invalid": True}, format="json")
    assert started.status_code == 200 and started.json()["state"] == "running"
    assert CampaignRow.objects.filter(outcome=RowOutcome.SKIPPED).count() == 5


def test_marketing_stopped_users_are_invalid_for_a_marketing_template(api, tenant_a):
    promo = MessageTemplateFactory(
        tenant=tenant_a.tenant,
        category="MARKETING",
        components=[{"type": "BODY", "text": "Sale, {{1}}!"}],
    )
    Contact.objects.create(
        tenant=tenant_a.tenant, wa_id="4915100000002", marketing_stopped_at=timezone.now()
    )
    audience = [{"to": to, "1": "Ana"} for to in ("+4915100000001", "+4915100000002")]
    data = create(api, promo, audience).json()
    assert data["preflight"]["errors"] == {"marketing_stopped": 1}


def test_a_csv_upload_is_streamed_into_rows(api, template):
    lines = ["to,header.1,1,2,metadata.order"]
    lines += [f"{to},A-{i},Ana,A-{i},A-{i}" for i, to in enumerate(numbers(50))]
    lines += ["not-a-number,A,B,C,D"]
    upload = SimpleUploadedFile(
        "audience.csv", ("\n".join(lines) + "\n").encode(), content_type="text/csv"
    )
    response = api.post(
        URL,
        {"template": f'{{"name": "{template.name}", "language": "en_US"}}', "audience": upload},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="csv-1",
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["rows_total"] == 51 and data["preflight"]["invalid"] == 1
    first = CampaignRow.objects.get(campaign_id=data["id"], number=1)
    assert first.variables == {"header.1": "A-0", "1": "Ana", "2": "A-0"}
    assert first.metadata == {"order": "A-0"}
    assert first.time_zones == "Europe/Berlin"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"audience": []}, "validation_error"),
        ({"audience": None}, "audience_missing"),
        ({"template": {"name": "nope", "language": "en_US"}}, "template_not_found"),
        ({"window": {"start": "20:00", "end": "09:00"}}, "validation_error"),
        ({"messages_per_second": 0}, "validation_error"),
        ({"surprise": 1}, "unknown_field"),
    ],
)
def test_a_bad_request_is_400_and_creates_nothing(api, template, change, code):
    body = {"template": {"name": template.name, "language": "en_US"}, "audience": [row()]}
    body |= change
    body = {k: v for k, v in body.items() if v is not None}
    response = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="bad")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == code
    assert not Campaign.objects.exists() and not CampaignRow.objects.exists()


def test_the_same_key_replays_and_another_body_conflicts(api, template):
    first = create(api, template, [row()])
    again = create(api, template, [row()])
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = create(api, template, [row(name="Bo")])
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert Campaign.objects.count() == 1


def test_another_tenants_campaign_is_not_found(api, template, tenant_b):
    data = create(api, template, [row()]).json()
    for path in ("", "/report", "/invalid-rows.csv"):
        assert tenant_b.client.get(f"{URL}/{data['id']}{path}").status_code == 404
    assert tenant_b.client.post(f"{URL}/{data['id']}/pause", {}, format="json").status_code == 404
    assert tenant_b.client.get(URL).json()["results"] == []


def started(api, template, audience, **fields):
    data = create(api, template, audience, start=True, **fields).json()
    return Campaign.objects.select_related("sender", "tenant", "template").get(pk=data["id"])


def test_a_pass_releases_the_campaigns_share_of_the_senders_rate(api, template, tenant_a):
    sender = tenant_a.tenant.senders.get()
    sender.messages_per_second = 10
    sender.save()
    campaign = started(api, template, [row(to=to) for to in numbers(30)])
    assert campaign.state == CampaignState.RUNNING
    result = feeder.feed(campaign_id=campaign.pk)
    assert result.released == 8  # 80 % of 10 per second
    messages = Message.objects.filter(campaign=campaign)
    assert messages.count() == 8 and {m.state for m in messages} == {MessageState.QUEUED}
    first = messages.get(recipient=numbers(1)[0])
    assert first.idempotency_key == f"campaign:{campaign.pk}:1"
    assert first.parameters[1]["parameters"][0]["text"] == "Ana"
    # The lead is full: the next pass adds nothing until those are submitted.
    assert feeder.feed(campaign_id=campaign.pk).released == 0


def test_nothing_is_released_before_send_at(api, template):
    later = timezone.now() + timedelta(minutes=10)
    campaign = started(api, template, [row()], send_at=later.isoformat())
    assert campaign.state == CampaignState.SCHEDULED
    result = feeder.feed(campaign_id=campaign.pk)
    assert result.released == 0 and not Message.objects.exists()
    Campaign.objects.filter(pk=campaign.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    result = feeder.feed(campaign_id=campaign.pk)
    assert result.state == CampaignState.RUNNING and result.released == 1


def test_rows_outside_the_window_wait_for_it(api, template):
    now = timezone.now().astimezone(timezone.get_fixed_timezone(60))
    # A window that is closed in Berlin now (an hour that starts 2 hours from now).
    start = (now + timedelta(hours=2)).replace(minute=0)
    end = (start + timedelta(hours=1)).time()
    window = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    if window["end"] <= window["start"]:
        pytest.skip("the window would cross midnight")
    campaign = started(api, template, [row()], window=window)
    result = feeder.feed(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert result.released == 0 and campaign.held_reason == HeldReason.OUTSIDE_WINDOW
    assert campaign.next_pass_at > timezone.now() + timedelta(minutes=30)


def test_a_campaign_is_held_at_the_portfolios_messaging_limit(api, template, tenant_a):
    portfolio_limit_learn(tenant=tenant_a.tenant, business_id="", value=3, source="operator")
    campaign = started(api, template, [row(to=to) for to in numbers(5)])
    assert campaign.preflight["messaging_limit"]["fits"] is False
    assert feeder.feed(campaign_id=campaign.pk).released == 3
    result = feeder.feed(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert result.released == 0 and campaign.held_reason == HeldReason.MESSAGING_LIMIT
    detail = api.get(f"{URL}/{campaign.pk}").json()
    assert detail["progress"]["held_reason"] == "messaging_limit"
    assert detail["progress"]["counts"]["held_at_limit"] == 2


def test_pause_parks_unsent_messages_and_resume_releases_them(api, template):
    campaign = started(api, template, [row(to=to) for to in numbers(3)])
    feeder.feed(campaign_id=campaign.pk)
    paused = api.post(f"{URL}/{campaign.pk}/pause", {"reason": "typo"}, format="json")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    assert paused.json()["state_reason"] == "typo"
    assert set(Message.objects.values_list("next_attempt_at", flat=True)) == {dispatch.PARKED}
    assert feeder.feed(campaign_id=campaign.pk).released == 0
    resumed = api.post(f"{URL}/{campaign.pk}/resume", {}, format="json")
    assert resumed.json()["state"] == "running"
    assert set(Message.objects.values_list("next_attempt_at", flat=True)) == {None}


def _claimed(campaign) -> pipeline.Work:
    """A batch of the campaign's messages claimed (``submitting``), its submit step not run."""
    claim = pipeline.claim_batch(tenant=campaign.tenant)
    return pipeline.transform(
        pipeline.Work(
            tenant_id=str(campaign.tenant_id),
            queue=campaign.tenant.bulk_queue_name,
            batch=claim.batch,
            ids=[str(m.pk) for m in claim.messages],
            claimed_at=claim.now.isoformat(),
            rounds=[m.round for m in claim.messages],
        )
    )


def test_pause_recalls_a_claimed_batch_whose_requests_have_not_begun(api, template):
    """A batch claimed before the pause whose submit step had not begun (waiting behind other
    work in the broker, say) never leaves: the pause retires it and its messages wait, parked."""
    campaign = started(api, template, [row(to=to) for to in numbers(3)])
    feeder.feed(campaign_id=campaign.pk)
    work = _claimed(campaign)
    assert len(work.ids) == 3
    paused = api.post(f"{URL}/{campaign.pk}/pause", {"reason": "typo"}, format="json")
    assert paused.status_code == 200
    messages = Message.objects.all()
    assert {(m.state, m.round, m.next_attempt_at) for m in messages} == {
        (MessageState.QUEUED, 1, dispatch.PARKED)
    }
    requeued = {e.detail["reason"] for m in messages for e in m.events.filter(type="requeued")}
    assert requeued == {"its campaign was paused"}
    assert pipeline.submit_step(work) is None  # its step, come late, sends nothing
    api.post(f"{URL}/{campaign.pk}/resume", {}, format="json")
    assert set(Message.objects.values_list("next_attempt_at", flat=True)) == {None}


def test_pause_recalls_a_shared_batch_whole_and_parks_only_its_own(api, template):
    """One claim can hold two campaigns' messages: the batch is retired whole, so the other
    campaign's go again at once (nothing of them left ``submitting`` with a retired batch)."""
    paused = started(api, template, [row(to=to) for to in numbers(2)], key="c-a")
    other = started(api, template, [row(to=to) for to in numbers(2, start=10)], key="c-b")
    feeder.feed(campaign_id=paused.pk)
    feeder.feed(campaign_id=other.pk)
    work = _claimed(paused)
    assert len(work.ids) == 4  # both campaigns' in one batch
    api.post(f"{URL}/{paused.pk}/pause", {"reason": "typo"}, format="json")
    states = {(m.campaign_id, m.state, m.round, m.next_attempt_at) for m in Message.objects.all()}
    assert states == {
        (paused.pk, MessageState.QUEUED, 1, dispatch.PARKED),
        (other.pk, MessageState.QUEUED, 1, None),
    }
    assert pipeline.submit_step(work) is None


def test_pause_leaves_a_batch_whose_requests_began_on_its_way(api, template):
    campaign = started(api, template, [row(to=to) for to in numbers(2)])
    feeder.feed(campaign_id=campaign.pk)
    work = _claimed(campaign)
    assert pipeline.batch_begin(work.batch, by="submit")  # its requests are leaving
    api.post(f"{URL}/{campaign.pk}/pause", {"reason": "typo"}, format="json")
    assert set(Message.objects.values_list("state", "round")) == {(MessageState.SUBMITTING, 0)}


def test_cancel_skips_what_was_not_sent(api, template, tenant_a):
    sender = tenant_a.tenant.senders.get()
    sender.messages_per_second = 2
    sender.save()
    campaign = started(api, template, [row(to=to) for to in numbers(5)])
    feeder.feed(campaign_id=campaign.pk)  # two released (80 % of 2 a second, rounded up)
    response = api.post(f"{URL}/{campaign.pk}/cancel", {"reason": "wrong list"}, format="json")
    assert response.json()["state"] == "cancelled"
    assert set(Message.objects.values_list("state", flat=True)) == {MessageState.CANCELLED}
    assert CampaignRow.objects.filter(outcome=RowOutcome.SKIPPED).count() == 5 - 2
    again = api.post(f"{URL}/{campaign.pk}/resume", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "campaign_state"


def test_a_campaign_completes_when_nothing_waits_to_be_submitted(api, template):
    campaign = started(api, template, [row()])
    feeder.feed(campaign_id=campaign.pk)
    assert feeder.feed(campaign_id=campaign.pk).state == CampaignState.RUNNING
    Message.objects.update(state=MessageState.ACCEPTED)
    assert feeder.feed(campaign_id=campaign.pk).state == CampaignState.COMPLETED
    campaign.refresh_from_db()
    assert campaign.finished_at is not None and campaign.next_pass_at is None


def test_the_report_names_the_columns_and_warns_of_unused_ones(api, template):
    data = create(api, template, [row(nmae="typo")]).json()
    assert data["preflight"]["columns"]["required"] == ["header.1", "1", "2"]
    assert data["preflight"]["columns"]["unused"] == ["nmae"]
    [warning] = data["preflight"]["warnings"]
    assert warning["code"] == "columns_unused" and "nmae" in warning["message"]
    assert data["preflight_status"] == "passed"  # a warning, not an invalid row


def test_meta_spam_rate_limit_pauses_a_running_marketing_campaign(api, tenant_a):
    from callbacks.models import CallbackEvent
    from callbacks.services import endpoint_configure
    from tenants.services import sender_spam_limited

    endpoint_configure(
        tenant=tenant_a.tenant, url="https://client.example/hooks", event_types=["campaign.paused"]
    )
    promo = MessageTemplateFactory(
        tenant=tenant_a.tenant,
        category="MARKETING",
        components=[{"type": "BODY", "text": "Sale, {{1}}!"}],
    )
    data = create(api, promo, [{"to": to, "1": "Ana"} for to in numbers(4)], start=True).json()
    campaign = Campaign.objects.select_related("sender").get(pk=data["id"])
    feeder.feed(campaign_id=campaign.pk)
    sender_spam_limited(sender=campaign.sender, detail={"error_code": "131048"})
    result = feeder.feed(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.PAUSED and "131048" in campaign.state_reason
    assert result.released == 0
    assert set(Message.objects.values_list("next_attempt_at", flat=True)) == {dispatch.PARKED}
    [event] = CallbackEvent.objects.filter(type="campaign.paused")
    assert "131048" in event.payload["data"]["reason"]


def test_a_paused_template_holds_the_campaign_and_a_disabled_one_pauses_it(api, template):
    campaign = started(api, template, [row(to=to) for to in numbers(3)])
    template.status = "PAUSED"
    template.save()
    assert feeder.feed(campaign_id=campaign.pk).held == HeldReason.TEMPLATE_WAITING
    assert not Message.objects.exists()  # no row is burnt on a refusal
    template.status = "DISABLED"
    template.save()
    feeder.feed(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.PAUSED and "DISABLED" in campaign.state_reason
    assert CampaignRow.objects.filter(outcome=RowOutcome.PENDING).count() == 3


def test_an_audience_file_too_large_is_refused_before_it_is_read(api, template, settings):
    settings.WAYPOST_CAMPAIGN_MAX_UPLOAD_BYTES = 1000
    lines = ["to,header.1,1,2"] + [f"{to},A,Ana,A" for to in numbers(5000)]
    upload = SimpleUploadedFile("big.csv", "\n".join(lines).encode(), content_type="text/csv")
    response = api.post(
        URL,
        {"template": f'{{"name": "{template.name}", "language": "en_US"}}', "audience": upload},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="big",
    )
    assert response.status_code == 413, response.json()
    assert response.json()["error"]["code"] == "audience_too_large"
    assert not Campaign.objects.exists()


def test_a_campaigns_messages_carry_its_window_and_the_recipients_zones(api, template):
    hour = timezone.now().astimezone(ZoneInfo("Europe/Berlin")).hour  # open now, an hour
    window = {"start": f"{hour:02d}:00", "end": f"{hour + 1:02d}:00"}
    campaign = started(api, template, [row()], window=window)
    assert feeder.feed(campaign_id=campaign.pk).released == 1
    message = Message.objects.get(campaign=campaign)
    stored = {k: v for k, v in message.send_window.items() if k != "zones"}
    assert SendWindow.parse(stored) == SendWindow.parse(window)  # 00:00 is stored as null
    assert message.send_window["zones"] == ["Europe/Berlin"]


def test_a_window_to_the_end_of_the_day_releases_its_rows(api, template):
    """Its own JSON says null for 24:00 (and for 00:00): each row's message takes it as given."""
    campaign = started(api, template, [row()], window={"start": "00:00", "end": "24:00"})
    assert feeder.feed(campaign_id=campaign.pk).released == 1


@pytest.mark.parametrize("body", [[None, None], "x", 3, None])
def test_a_body_that_is_not_an_object_is_400(api, body):
    response = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="odd")
    assert response.status_code == 400, response.content


def test_a_campaign_send_at_more_than_35_days_ahead_is_400(api, template):
    far = (timezone.now() + timedelta(days=40)).isoformat()
    response = create(api, template, [row()], send_at=far)
    assert response.status_code == 400 and response.json()["error"]["code"] == "send_at_invalid"


def test_cancelled_carries_the_counts_as_they_end(api, template, tenant_a):
    from callbacks.models import CallbackEvent
    from callbacks.services import endpoint_configure

    endpoint_configure(
        tenant=tenant_a.tenant,
        url="https://client.example/hooks",
        event_types=["campaign.cancelled"],
    )
    campaign = started(api, template, [row(to=to) for to in numbers(3)])
    api.post(f"{URL}/{campaign.pk}/cancel", {}, format="json")
    [event] = CallbackEvent.objects.filter(type="campaign.cancelled")
    counts = event.payload["data"]["counts"]
    assert (counts["pending"], counts["skipped"]) == (0, 3)


def test_rows_naming_media_the_tenant_lacks_are_invalid_at_preflight(api, tenant_a):
    from media.models import MediaAsset

    promo = MessageTemplateFactory(
        tenant=tenant_a.tenant,
        components=[
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Hi {{1}}!"},
        ],
    )
    own = MediaAsset.objects.create(
        tenant=tenant_a.tenant,
        sender=tenant_a.tenant.senders.get(),
        file=b"\x89PNG\r\n\x1a\n",
        filename="a.png",
        content_type="image/png",
        size=8,
        sha256="1" * 64,
    )
    audience = [
        {"to": "+4915100000001", "1": "Ana", "header.image": f"media:{own.pk}"},
        {"to": "+4915100000002", "1": "Bo", "header.image": f"media:{uuid.uuid4()}"},
    ]
    data = create(api, promo, audience).json()
    assert data["preflight"]["errors"] == {"media_not_found": 1}


def test_rows_whose_zones_never_share_an_hour_of_the_window_are_invalid(api, template):
    # An Australian mobile is placed by country: every Australian zone. A one-hour window
    # is never open in all of them at once.
    audience = [row(to="+61412345678"), row(to="+4915100000001")]
    data = create(api, template, audience, window={"start": "09:00", "end": "10:00"}).json()
    assert data["preflight"]["errors"] == {"send_window_never_open": 1}


def test_the_tenants_own_message_is_claimed_alone_not_beside_a_campaigns(api, template):
    campaign = started(api, template, [row(to=to) for to in numbers(5)])
    feeder.feed(campaign_id=campaign.pk)
    single = api.post(
        "/api/v1/messages",
        {
            "to": "+4915199999999",
            "template": {
                "name": template.name,
                "language": "en_US",
                "components": [
                    {"type": "header", "parameters": [{"type": "text", "text": "O-1"}]},
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ana"},
                            {"type": "text", "text": "O-1"},
                        ],
                    },
                ],
            },
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="otp",
    ).json()
    first = pipeline.claim_batch(tenant=campaign.tenant)
    assert [str(m.pk) for m in first.messages] == [single["id"]] and first.full
    second = pipeline.claim_batch(tenant=campaign.tenant)
    assert {m.campaign_id for m in second.messages} == {campaign.pk}
    assert len(second.messages) == 5
