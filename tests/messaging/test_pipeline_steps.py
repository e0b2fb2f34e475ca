"""Pipeline steps called directly on the real database (no worker): what `validate` re-checks
after the API accepted a message."""

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


def set_template(message, status):
    MessageTemplate.objects.filter(pk=message.template_id).update(status=status)


def test_a_template_paused_after_the_api_call_makes_the_message_wait(queued):
    set_template(queued, "PAUSED")
    assert pipeline.step_validate([queued.pk]) == []
    queued.refresh_from_db()
    assert (queued.state, queued.error_code, queued.error_class) == (
        "retry_scheduled",
        "template_paused",
        "cool_down",
    )
    assert queued.next_attempt_at > timezone.now()


def test_a_disabled_template_refuses_the_message_with_the_reason(queued):
    set_template(queued, "PAUSED")
    pipeline.step_validate([queued.pk])
    set_template(queued, "DISABLED")
    Message.objects.filter(pk=queued.pk).update(next_attempt_at=timezone.now())  # now due
    assert pipeline.step_validate([queued.pk]) == []
    queued.refresh_from_db()
    assert (queued.state, queued.error_code, queued.error_title) == (
        "rejected",
        "template_not_sendable",
        "Template is DISABLED",
    )
    assert queued.round == 1  # the due retry started a new round before being refused


def test_a_reinstated_template_lets_the_message_go_on(queued):
    set_template(queued, "PAUSED")
    pipeline.step_validate([queued.pk])
    set_template(queued, "APPROVED")
    Message.objects.filter(pk=queued.pk).update(next_attempt_at=timezone.now())
    assert pipeline.step_validate([queued.pk]) == [queued.pk]
    assert Message.objects.get(pk=queued.pk).state == "queued"


def test_a_suppressed_recipient_is_refused(queued):
    Suppression.objects.create(tenant=queued.tenant, recipient=queued.recipient)
    assert pipeline.step_validate([queued.pk]) == []
    queued.refresh_from_db()
    assert (queued.state, queued.error_code) == ("rejected", "recipient_suppressed")


def test_an_inactive_sender_keeps_the_message_queued(queued):
    queued.sender.status = "disabled"
    queued.sender.save()
    assert pipeline.step_validate([queued.pk]) == []
    queued.refresh_from_db()
    assert queued.state == "queued"
    assert queued.events.filter(type="sender_blocked").count() == 1


def test_validate_is_idempotent(queued):
    assert pipeline.step_validate([queued.pk]) == [queued.pk]
    assert pipeline.step_validate([queued.pk]) == [queued.pk]
    assert queued.events.filter(type="validated").count() == 1
