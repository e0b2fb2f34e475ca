"""``send_at`` on a single message: not due before it, refused when it could never be sent."""

from datetime import timedelta

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
