"""The drain's claim on the real database (no worker, no HTTP): what it re-checks after the
API accepted a message, and what it commits before a request leaves."""

import pytest
from django.utils import timezone

from messaging.models import Message, Suppression
from messaging.selectors import message_payload
from messaging.send import pipeline
from messaging.track.contacts import identities
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


def test_a_sendable_message_is_claimed_and_committed_submitting_then_its_payload_built(queued):
    result = claim(queued)
    assert [m.pk for m in result.messages] == [queued.pk]
    queued.refresh_from_db()
    assert (queued.state, queued.attempts) == ("submitting", 1)
    started = queued.events.get(type="submit_started")
    assert started.detail == {"attempt": 1, "batch": result.batch}  # the batch it belongs to
    assert message_payload(message=queued) is None  # the next step's
    work = pipeline.transform(
        pipeline.Work(
            tenant_id=str(queued.tenant_id),
            queue=queued.tenant.queue_name,
            batch=result.batch,
            ids=[str(queued.pk)],
            claimed_at=result.now.isoformat(),
            rounds=[0],
        )
    )
    # The payload is kept once, in its event (not on the row PostgreSQL rewrites per state).
    payload = message_payload(message=queued)
    assert payload["biz_opaque_callback_data"] == str(queued.pk)
    assert work.payloads == [payload]  # what the submit sends
    assert [e.type for e in queued.events.order_by("id")] == [
        "requested",
        "validated",
        "submit_started",
        "payload_built",
    ]
    queued.refresh_from_db()
    assert queued.state == "submitting"  # the payload moves no state


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
    pipeline._rate_limit([queued], identities([queued]))  # spends the recipient's one message
    result = claim(queued)
    assert (result.messages, result.settled) == ([], 1)
    queued.refresh_from_db()
    assert queued.state == "queued" and queued.next_attempt_at > timezone.now()


def webhook_status(message, wamid, status, **error):
    """A status webhook for ``message`` (matched by its id in biz_opaque_callback_data);
    ``error``: a failed status's error fields."""
    from datetime import UTC, datetime

    from messaging.track.inbound import statuses_apply
    from whatsapp.reports import StatusReport

    statuses_apply(
        reports=[
            StatusReport(
                phone_number_id=message.sender.phone_number_id,
                wamid=wamid,
                status=status,
                occurred_at=datetime.now(UTC),
                biz_opaque_callback_data=str(message.pk),
                **error,
            )
        ]
    )


def _answer(wamid, message_status="accepted"):
    from whatsapp import SubmitOutcome, SubmitResult

    return SubmitResult(
        outcome=SubmitOutcome.RESPONSE,
        http_status=200,
        body={
            "messaging_product": "whatsapp",
            "contacts": [{"input": "+4915112345678", "wa_id": "4915112345678"}],
            "messages": [{"id": wamid, "message_status": message_status}],
        },
    )


@pytest.mark.parametrize("message_status", ["accepted", "held_for_quality_assessment"])
def test_the_send_answer_is_recorded_even_when_status_webhooks_came_first(queued, message_status):
    """Statuses can reach us before the send answer is recorded: the answer is still a fact
    for the ledger (the fold ranks it below them), and a held answer is not lost."""
    [claimed] = claim(queued).messages
    webhook_status(queued, "wamid.early", "delivered")
    assert Message.objects.get(pk=queued.pk).state == "delivered"
    accepted = pipeline.record_answers([claimed], [_answer("wamid.early", message_status)])
    assert accepted == [queued.pk]
    queued.refresh_from_db()
    assert (queued.state, queued.provider_message_id) == ("delivered", "wamid.early")
    types = set(queued.events.values_list("type", flat=True))
    assert {"submit_responded", "accepted", "status_delivered"} <= types
    assert ("held" in types) == (message_status != "accepted")


def test_an_accepted_answer_after_a_failed_status_keeps_the_statuss_error(queued):
    """A failed status (131026) recorded before the send answer: the answer is a fact in the
    ledger, but clearing the error fields (as an acceptance after an earlier round's error
    does) would leave a failed message with no reason."""
    [claimed] = claim(queued).messages
    webhook_status(
        queued,
        "wamid.failed",
        "failed",
        error_code=131026,
        error_title="Message undeliverable",
        error_class="never_retry",
    )
    assert pipeline.record_answers([claimed], [_answer("wamid.failed")]) == [queued.pk]
    queued.refresh_from_db()
    assert (queued.state, queued.error_code, queued.error_title, queued.error_class) == (
        "failed",
        "131026",
        "Message undeliverable",
        "never_retry",
    )
    assert queued.provider_message_id == "wamid.failed"


def test_an_accepted_answer_in_a_later_round_clears_the_earlier_rounds_error(queued):
    Message.objects.filter(pk=queued.pk).update(
        error_code="131000", error_title="Something went wrong", error_class="retry_backoff"
    )
    [claimed] = claim(queued).messages
    pipeline.record_answers([claimed], [_answer("wamid.ok")])
    queued.refresh_from_db()
    assert queued.state == "accepted"
    assert (queued.error_code, queued.error_title, queued.error_class) == ("", "", "")


def test_an_error_answer_after_a_provider_status_takes_no_pipeline_action(queued):
    """A 5xx answered although Meta did send it (a status says so): the answer is recorded,
    but no retry is scheduled and nothing is refused."""
    from whatsapp import SubmitOutcome, SubmitResult

    [claimed] = claim(queued).messages
    webhook_status(queued, "wamid.sent", "sent")
    error = SubmitResult(
        outcome=SubmitOutcome.RESPONSE,
        http_status=500,
        body={"error": {"code": 131000, "message": "Something went wrong"}},
    )
    assert pipeline.record_answers([claimed], [error]) == []
    queued.refresh_from_db()
    assert queued.state == "sent" and queued.error_code == ""
    types = set(queued.events.values_list("type", flat=True))
    assert "submit_responded" in types and "submit_unknown" not in types


def _refused(code: int, title: str):
    from whatsapp import SubmitOutcome, SubmitResult

    return SubmitResult(
        outcome=SubmitOutcome.RESPONSE,
        http_status=400,
        body={"error": {"code": code, "message": f"(#{code}) {title}"}},
    )


def test_a_refusal_saying_the_user_stopped_marketing_records_the_stop(queued):
    """The provider's classification says so (its policy), not a number the pipeline knows."""
    from messaging.models import Contact

    [claimed] = claim(queued).messages
    refusal = _refused(131050, "User has stopped marketing messages")
    assert pipeline.record_answers([claimed], [refusal]) == []
    queued.refresh_from_db()
    assert (queued.state, queued.error_code, queued.error_class) == (
        "rejected",
        "131050",
        "never_retry",
    )
    contact = Contact.objects.get(tenant=queued.tenant)
    assert contact.marketing_stopped_at is not None


@pytest.mark.parametrize("retry", [True, False])
def test_the_marketing_limit_is_tried_once_more_a_day_later_when_the_tenant_asks(queued, retry):
    queued.tenant.marketing_limit_retry = retry
    queued.tenant.save(update_fields=["marketing_limit_retry"])
    limit = _refused(131049, "This message was not delivered")
    [claimed] = claim(queued).messages
    pipeline.record_answers([claimed], [limit])
    queued.refresh_from_db()
    if not retry:
        assert (queued.state, queued.error_class) == ("rejected", "never_retry")
        return
    assert (queued.state, queued.error_code, queued.error_class) == (
        "retry_scheduled",
        "131049",
        "cool_down",
    )
    wait = (queued.next_attempt_at - timezone.now()).total_seconds()
    assert pipeline.MARKETING_LIMIT_WAIT - 60 < wait <= pipeline.MARKETING_LIMIT_WAIT
    make_due(queued)
    [claimed] = claim(queued).messages
    pipeline.record_answers([claimed], [limit])  # once only: the second refusal stands
    queued.refresh_from_db()
    assert (queued.state, queued.error_class, queued.attempts) == ("rejected", "never_retry", 2)


def test_a_failed_status_saying_the_user_stopped_marketing_records_the_stop(queued):
    """The status webhook's error, classified by the provider's parser, reaches the contact."""
    import json

    from messaging.models import Contact
    from messaging.track.inbound import statuses_apply
    from sandbox import wire
    from whatsapp.meta import MetaCloudProvider

    [claimed] = claim(queued).messages
    pipeline.record_answers([claimed], [_answer("wamid.stop")])
    failed = {
        "id": "wamid.stop",
        "status": "failed",
        "timestamp": str(int(timezone.now().timestamp())),
        "recipient_id": queued.recipient.lstrip("+"),
        "errors": [wire.webhook_error(wire.MetaError(131050))],
    }
    value = wire.messages_value(queued.sender.phone_number_id, "15550001111", statuses=[failed])
    body = json.dumps(wire.envelope(queued.sender.waba_id, "messages", value)).encode()
    [report] = MetaCloudProvider(base_url="http://unused").parse_webhook(body).events
    statuses_apply(reports=[report])
    queued.refresh_from_db()
    assert (queued.state, queued.error_code) == ("failed", "131050")
    assert Contact.objects.get(tenant=queued.tenant).marketing_stopped_at is not None
