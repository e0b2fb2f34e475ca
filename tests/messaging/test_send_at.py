"""``send_at`` on a single message: not due before it, refused when it could never be sent."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from messaging.models import Message
from messaging.send import pipeline

from ..factories import MessageTemplateFactory
from .helpers import body

URL = "/api/v1/messages"


@pytest.fixture
def template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


def post(client, data, key="key-1"):
    return client.post(URL, data, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_message_with_send_at_is_not_claimed_before_it(api, template):
    send_at = timezone.now() + timedelta(minutes=5)
    response = post(api, body(template) | {"send_at": send_at.isoformat()})
    assert response.status_code == 202, response.json()
    assert response.json()["send_at"] is not None
    message = Message.objects.get(pk=response.json()["id"])
    assert message.next_attempt_at == message.send_at
    assert abs((message.send_at - send_at).total_seconds()) < 1e-3
    early = pipeline.claim_batch(tenant=message.tenant, now=send_at - timedelta(seconds=1))
    assert early.messages == [] and early.settled == 0
    due = pipeline.claim_batch(tenant=message.tenant, now=send_at + timedelta(seconds=1))
    assert [m.pk for m in due.messages] == [message.pk]


def test_a_send_at_in_the_past_sends_at_once(api, template):
    response = post(api, body(template) | {"send_at": "2020-01-01T00:00:00Z"})
    assert response.status_code == 202
    message = Message.objects.get(pk=response.json()["id"])
    assert message.next_attempt_at is None and message.send_at is None


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"send_at": "tomorrow"}, "send_at_invalid"),
        ({"send_at": (timezone.now() + timedelta(days=40)).isoformat()}, "send_at_invalid"),
        (
            {"send_at": (timezone.now() + timedelta(hours=2)).isoformat(), "ttl_seconds": 600},
            "send_at_after_expiry",
        ),
    ],
)
def test_a_send_at_that_cannot_work_is_400(api, template, extra, code):
    response = post(api, body(template) | extra)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == code
    assert not Message.objects.exists()


def closed_window_now():
    """A window (in Berlin) that is closed now and opens within the next 24 hours."""
    berlin = timezone.now().astimezone(ZoneInfo("Europe/Berlin"))
    start = (berlin + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    if start.hour >= 23 or start.hour < 2:
        pytest.skip("the test's window would cross midnight")
    return {"start": start.strftime("%H:%M"), "end": f"{start.hour + 1:02d}:00"}, start


def test_a_message_outside_its_send_window_waits_for_it_and_a_retry_too(api, template):
    window, opens = closed_window_now()
    response = post(api, body(template) | {"send_window": window})
    assert response.status_code == 202, response.json()
    data = response.json()
    assert data["send_window"]["zones"] == ["Europe/Berlin"]
    message = Message.objects.get(pk=data["id"])
    assert message.next_attempt_at == opens
    assert pipeline.claim_batch(tenant=message.tenant).messages == []
    # Due again (a retry's time, say) while the window is still closed: it waits for it.
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
    claim = pipeline.claim_batch(tenant=message.tenant)
    assert claim.messages == [] and claim.settled == 1
    message.refresh_from_db()
    assert message.state == "queued" and message.next_attempt_at == opens
    assert pipeline.claim_batch(tenant=message.tenant, now=opens).messages[0].pk == message.pk


@pytest.mark.parametrize(
    ("window", "code"),
    [
        ({"start": "20:00", "end": "09:00"}, "send_window_invalid"),
        ({"start": "9am"}, "send_window_invalid"),
        ({"days": ["someday"]}, "send_window_invalid"),
    ],
)
def test_a_send_window_that_cannot_work_is_400(api, template, window, code):
    response = post(api, body(template) | {"send_window": window})
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == code


def test_a_window_opening_after_the_time_to_live_is_400(api, template):
    window, _opens = closed_window_now()
    response = post(api, body(template) | {"send_window": window, "ttl_seconds": 600})
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "send_window_after_expiry"
