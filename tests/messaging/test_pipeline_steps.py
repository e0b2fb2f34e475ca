"""The drain's claim on the real database (no worker, no HTTP): what it re-checks after the
API accepted a message, and what it commits before a request leaves."""

import pytest
from django.utils import timezone

from messaging import pipeline
from messaging.models import Message, Suppression
from templates_registry.models import MessageTemplate

from ..factories import MessageTemplateFactory
from .helpers import body


@pytest.fixture
def queued(tenant_a):
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    data = tenant_a.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY="k"
    ).json()
    return Message.objects.get(pk=data["id"])


def claim(message):
    return pipeline.claim_batch(tenant=message.tenant)


def set_template(message, status):
    MessageTemplate.objects.filter(pk=message.template_id).update(status=status)


def make_due(message):
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())


def test_a_sendable_message_is_claimed_and_committed_submitting_with_its_payload(queued):
    result = claim(queued)
    assert [m.pk for m in result.messages] == [queued.pk]
    queued.refresh_from_db()
    assert (queued.state, queued.attempts) == ("submitting", 1)
    assert queued.payload["biz_opaque_callback_data"] == str(queued.pk)
    assert [e.type for e in queued.events.order_by("id")] == [
        "requested",
        "validated",
        "payload_built",
        "submit_started",
    ]


def test_a_template_paused_after_the_api_call_makes_the_message_wait(queued):
    set_template(queued, "PAUSED")
    assert claim(queued).messages == []
    queued.refresh_from_db()
    assert (queued.state, queued.error_code, queued.error_class) == (
        "retry_scheduled",
        "template_paused",
        "cool_down",
    )
    assert queued.next_attempt_at > timezone.now()
    assert claim(queued).settled == 0  # not due again before its time


def test_a_disabled_template_refuses_the_message_with_the_reason(queued):
    set_template(queued, "PAUSED")
    claim(queued)
    set_template(queued, "DISABLED")
    make_due(queued)
    assert claim(queued).messages == []
    queued.refresh_from_db()
    assert (queued.state, queued.error_code, queued.error_title) == (
        "rejected",
        "template_not_sendable",
        "Template is DISABLED",
    )
    assert queued.round == 1  # the due retry started a new round before being refused


@pytest.mark.parametrize("status", ["APPROVED", "FLAGGED"])
def test_a_sendable_template_lets_the_message_go_on(queued, status):
    set_template(queued, "PAUSED")
    claim(queued)
    set_template(queued, status)
    make_due(queued)
    assert [m.pk for m in claim(queued).messages] == [queued.pk]
    queued.refresh_from_db()
    assert (queued.state, queued.round) == ("submitting", 1)


def test_a_suppressed_recipient_is_refused(queued):
    Suppression.objects.create(tenant=queued.tenant, recipient=queued.recipient)
    assert claim(queued).messages == []
    queued.refresh_from_db()
    assert (queued.state, queued.error_code) == ("rejected", "recipient_suppressed")


def test_a_message_of_an_inactive_sender_is_not_due(queued):
    queued.sender.status = "disabled"
    queued.sender.save()
    result = claim(queued)
    assert (result.messages, result.settled) == ([], 0)
    queued.refresh_from_db()
    assert queued.state == "queued" and queued.events.count() == 1


def test_a_claimed_message_is_claimed_once(queued):
    assert len(claim(queued).messages) == 1
    assert claim(queued).messages == []
    assert queued.events.filter(type="submit_started").count() == 1


def test_a_message_over_the_pair_limit_waits_without_a_submit(queued, settings):
    settings.WAYPOST_PAIR_BURST = 1
    Message.objects.filter(pk=queued.pk).update(recipient="+4915199999999")
    queued.refresh_from_db()
    pipeline._rate_limit([queued])  # spends the recipient's one message
    result = claim(queued)
    assert (result.messages, result.settled) == ([], 1)
    queued.refresh_from_db()
    assert queued.state == "queued" and queued.next_attempt_at > timezone.now()
