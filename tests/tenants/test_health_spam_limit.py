"""Meta's spam rate limit (131048) in the send pipeline: the sender is reported once per pass
(``tenants.services.sender_spam_limited``) — a ``spam_rate_limit`` event in its health history
that campaigns read (``sender_spam_limited_since``), and an alert — while each message still
cools down as before."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message
from messaging.send import pipeline
from tenants.models import HealthKind, SenderHealthEvent
from tenants.selectors import sender_spam_limited_since
from tenants.services import sender_spam_limited
from whatsapp import SubmitOutcome, SubmitResult

from ..factories import MessageTemplateFactory, SenderNumberFactory
from ..messaging.helpers import body

pytestmark = pytest.mark.django_db


def refused(code: int, title: str) -> SubmitResult:
    return SubmitResult(
        outcome=SubmitOutcome.RESPONSE,
        http_status=400,
        body={"error": {"code": code, "message": f"(#{code}) {title}"}},
    )


SPAM = refused(131048, "Spam rate limit hit")


@pytest.fixture
def claimed(tenant_a):
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    for index in range(3):
        tenant_a.client.post(
            "/api/v1/messages",
            body(template, to=f"+491511234567{index}"),
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"k{index}",
        )
    messages = pipeline.claim_batch(tenant=tenant_a.tenant).messages
    assert len(messages) == 3
    return messages


def test_a_pass_that_meets_131048_reports_its_sender_once_and_the_messages_cool_down(
    claimed, caplog, django_capture_on_commit_callbacks
):
    started = timezone.now()
    throttled = refused(130429, "Rate limit hit")  # another cool-down: not the spam limit
    with (
        caplog.at_level(logging.WARNING, logger="waypost.alerts"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        pipeline.record_answers(claimed, [SPAM, SPAM, throttled])
    [event] = SenderHealthEvent.objects.filter(kind=HealthKind.SPAM_RATE_LIMIT)
    sender = claimed[0].sender
    assert (event.sender_id, event.value, event.source) == (sender.pk, "131048", "pipeline")
    assert event.detail == {"error_code": "131048", "messages": 2}
    assert "spam rate limit (131048)" in caplog.text
    assert sender_spam_limited_since(sender=sender, since=started)
    assert not sender_spam_limited_since(sender=sender, since=timezone.now() + timedelta(seconds=1))
    states = set(
        Message.objects.filter(pk__in=[m.pk for m in claimed]).values_list("state", "error_class")
    )
    assert states == {("retry_scheduled", "cool_down")}


def test_a_pass_without_131048_reports_nothing(claimed):
    pipeline.record_answers(claimed, [refused(130429, "Rate limit hit")] * 3)
    assert not SenderHealthEvent.objects.exists()


def test_spam_limited_since_is_per_sender():
    one, other = SenderNumberFactory(), SenderNumberFactory()
    before = timezone.now() - timedelta(seconds=1)
    sender_spam_limited(sender=one, detail={"messages": 1})
    assert sender_spam_limited_since(sender=one, since=before)
    assert not sender_spam_limited_since(sender=other, since=before)
