"""What the review of issue 20 found, kept found: hostile audiences (a NUL, a nested form
field, a formula in a cell), a pause that must hold every waiting message, a cancel that dies
half-way, two campaigns of one portfolio racing for its messaging limit."""

import contextlib
import csv
import io
import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from campaigns import feeder, services
from campaigns.models import Campaign
from messaging.models import Message
from messaging.send import dispatch, pipeline
from messaging.states import MessageState
from tenants.services import portfolio_limit_learn

from ..factories import MessageTemplateFactory

URL = "/api/v1/campaigns"


@pytest.fixture
def template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


def row(to="+4915112345678"):
    return {"to": to, "header.1": "A-1", "1": "Ana", "2": "A-1"}


def create(api, template, audience, key, **fields):
    body = {"template": {"name": template.name, "language": "en_US"}, "audience": audience}
    return api.post(URL, body | fields, format="json", HTTP_IDEMPOTENCY_KEY=key)


def upload(api, template, text: str, key: str, **fields):
    file = SimpleUploadedFile("a.csv", text.encode(), content_type="text/csv")
    data = {"template": f'{{"name": "{template.name}", "language": "en_US"}}', "audience": file}
    return api.post(URL, data | fields, format="multipart", HTTP_IDEMPOTENCY_KEY=key)


def test_a_nul_in_a_csv_cell_is_a_400(api, template):
    response = upload(api, template, "to,header.1,1,2\n+4915112345678,A,An\x00a,A\n", "nul")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "audience_unreadable"
    assert not Campaign.objects.exists()


def test_a_deeply_nested_form_field_is_a_400(api, template):
    text = "to,header.1,1,2\n+4915112345678,A,Ana,A\n"
    response = upload(api, template, text, "deep", defaults="[" * 200_000)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "defaults"


def test_the_invalid_rows_csv_neutralises_formulas_and_keeps_numbers(api, template):
    audience = [row(to='=HYPERLINK("http://evil.example","click")'), row(to="12345")]
    data = create(api, template, audience, "inj").json()
    download = api.get(f"{URL}/{data['id']}/invalid-rows.csv")
    lines = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert lines[1][1].startswith("'=HYPERLINK")
    assert lines[2][1] == "12345"
    assert not [c for line in lines[1:] for c in line if c[:1] in ("=", "@")]


def test_pause_parks_a_message_waiting_for_its_window_too(api, template, tenant_a):
    hour = timezone.now().astimezone(ZoneInfo("Europe/Berlin")).hour
    window = {"start": f"{hour:02d}:00", "end": f"{hour + 1:02d}:00"}
    campaign_id = create(api, template, [row()], "win", window=window, start=True).json()["id"]
    assert feeder.feed(campaign_id=campaign_id).released == 1
    later = timezone.now() + timedelta(hours=2)  # the drain looks after the window closed
    pipeline.claim_batch(tenant=tenant_a.tenant, now=later)
    message = Message.objects.get(campaign_id=campaign_id)
    assert message.next_attempt_at > later  # waiting for the next opening
    assert api.post(f"{URL}/{campaign_id}/pause", {}, format="json").status_code == 200
    message.refresh_from_db()
    assert message.next_attempt_at == dispatch.PARKED  # not due when the window opens


def test_a_cancel_that_dies_half_way_leaves_nothing_due_and_a_second_cancel_finishes(
    api, template, monkeypatch
):
    audience = [row(to=f"+4915100000{i:03d}") for i in range(3)]
    campaign_id = create(api, template, audience, "cancel", start=True).json()["id"]
    assert feeder.feed(campaign_id=campaign_id).released == 3

    def killed(**kwargs):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(services, "campaign_messages_cancel", killed)
    api.raise_request_exception = False
    assert api.post(f"{URL}/{campaign_id}/cancel", {}, format="json").status_code == 500
    monkeypatch.undo()
    messages = Message.objects.filter(campaign_id=campaign_id)
    assert set(messages.values_list("next_attempt_at", flat=True)) == {dispatch.PARKED}
    again = api.post(f"{URL}/{campaign_id}/cancel", {}, format="json")
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    assert set(messages.values_list("state", flat=True)) == {MessageState.CANCELLED}


@pytest.mark.django_db(transaction=True)
def test_two_campaigns_of_one_portfolio_never_release_past_its_limit(
    api, template, tenant_a, monkeypatch
):
    portfolio_limit_learn(tenant=tenant_a.tenant, business_id="", value=3, source="operator")
    ids = [
        create(
            api, template, [row(to=f"+49151{n}{i:07d}") for i in range(3)], f"k{n}", start=True
        ).json()["id"]
        for n in range(2)
    ]
    meet = threading.Barrier(2)
    real = feeder.portfolio_usage

    def usage(**kwargs):  # without the portfolio lock both passes count before either commits
        # With it, the other pass waits for our commit and never meets us here.
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait(timeout=1)
        return real(**kwargs)

    monkeypatch.setattr(feeder, "portfolio_usage", usage)

    def run(campaign_id):
        try:
            feeder.feed(campaign_id=campaign_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Message.objects.filter(campaign_id__in=ids).count() == 3
