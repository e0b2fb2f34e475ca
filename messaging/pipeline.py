"""The send pipeline's four steps, each over a batch of message ids.

    validate → transform → submit → check_acceptance

Each step loads its batch in one query, does its work, writes all its events and state changes
in one transaction, and returns the ids that go on to the next step. Each is idempotent: a
redelivered task (``acks_late``) finds the step already done — the state moved on, or the
event's dedupe key already exists — and does nothing twice. In particular a message is
submitted only from ``queued``, claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and moved to
``submitting`` in a committed transaction *before* the HTTP request, so no redelivery, race
or crash can submit the same round twice.

* validate — re-checks what can change after the API call: tenant and sender active, template
  still sendable (APPROVED or FLAGGED; PAUSED and not-yet-approved wait, DISABLED and the like
  are refused), recipient not suppressed. A retry that is due starts a new round here.
* transform — builds the canonical Meta payload, with ``biz_opaque_callback_data`` = the
  message id, so a status webhook can be matched even when the send response was lost.
* submit — takes tokens from the sender's and the recipient pair's rate limits (messages that
  must wait are rescheduled with a countdown, holding no worker), claims the messages, posts
  them concurrently over the provider's pooled session, and records each exact response or
  exception. A message left ``submitting`` by a dead worker becomes ``unknown``, never resent.
* check_acceptance — classifies each answer (``messaging.errors``): accepted or held; retry
  with backoff, cool-down, refused, sender blocked (alert), or unknown (ambiguous).
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging import dispatch
from messaging.errors import Classification, classify
from messaging.faults import crash_point
from messaging.inbound import orphans_resolve
from messaging.ledger import NewEvent, record
from messaging.models import Message, MessageEvent, Suppression
from messaging.providers import SubmitOutcome, SubmitResult, get_provider
from messaging.ratelimit import get_rate_limiter
from messaging.states import NOT_SUBMITTED, ErrorClass, EventSource, EventType, MessageState
from templates_registry.models import MessageTemplate, TemplateStatus
from tenants.models import MissingCredential, SenderStatus

log = logging.getLogger(__name__)
S, E, P = MessageState, EventType, EventSource.PIPELINE

SENDABLE = {TemplateStatus.APPROVED, TemplateStatus.FLAGGED}
# Not sendable now, may become so (Meta reviews, appeals, unpauses): wait, don't refuse.
WAITING = {
    TemplateStatus.PAUSED,
    TemplateStatus.PENDING,
    TemplateStatus.IN_APPEAL,
    TemplateStatus.LOCKED,
    TemplateStatus.LIMIT_EXCEEDED,
}
TEMPLATE_WAIT_SECONDS = 600.0
RETRY_BASE_SECONDS = 2.0
RETRY_CAP_SECONDS = 300.0


@dataclass
class _Batch:
    """What one step decided, written in one transaction, then acted on after commit."""

    events: list[NewEvent] = field(default_factory=list)
    changed: dict = field(default_factory=dict)  # message id -> Message with changed fields
    fields: set[str] = field(default_factory=set)
    retries: list[tuple[Message, float]] = field(default_factory=list)

    def change(self, message: Message, **values) -> None:
        for name, value in values.items():
            setattr(message, name, value)
        self.changed[message.pk] = message
        self.fields.update(values)

    def event(self, message: Message, type_: str, **kw) -> None:
        self.events.append(
            NewEvent(
                message.pk, type_, kw.pop("source", P), round=kw.pop("round", message.round), **kw
            )
        )

    def write(self) -> None:
        if self.changed and self.fields:
            Message.objects.bulk_update(list(self.changed.values()), sorted(self.fields))
        record(self.events)
        for message, delay in self.retries:
            transaction.on_commit(
                lambda m=message, d=delay: dispatch.enqueue_messages(
                    [m.pk], queue=m.tenant.queue_name, countdown=d
                )
            )


def _error(batch: _Batch, message: Message, *, code, title="", details="", error_class):
    batch.change(
        message,
        error_code=str(code or ""),
        error_title=title[:255],
        error_details=details,
        error_class=error_class,
    )


def _schedule(batch: _Batch, message: Message, delay: float, now, reason: str) -> None:
    """retry_scheduled in this round; the retry starts a new round when it is due."""
    batch.change(message, next_attempt_at=now + timedelta(seconds=delay))
    batch.event(
        message,
        E.RETRY_SCHEDULED,
        detail={
            "reason": reason,
            "delay_seconds": round(delay, 3),
            "next_attempt_at": message.next_attempt_at.isoformat(),
        },
    )
    if delay <= settings.WAYPOST_COUNTDOWN_MAX:
        batch.change(message, enqueued_at=message.next_attempt_at)
        batch.retries.append((message, delay))
    else:  # too long for a broker countdown: the periodic re-drive picks it up when due
        batch.change(message, enqueued_at=None)


def backoff_delay(attempts: int) -> float:
    """Exponential backoff with jitter: 2 s, 4 s, 8 s … capped at 5 minutes, ±50 %."""
    base = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return base / 2 + random.uniform(0, base / 2)  # noqa: S311 — jitter, not security


# ==================================================================================================
# validate
# ==================================================================================================


def step_validate(ids: list) -> list:
    now = timezone.now()
    batch, go_on = _Batch(), []
    with transaction.atomic():
        messages = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids, state__in=NOT_SUBMITTED)
            .filter(
                Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + timedelta(seconds=1))
            )
            .select_related("tenant", "sender")
        )
        templates = _current_templates(messages)
        suppressed = set(
            Suppression.objects.filter(
                tenant_id__in={m.tenant_id for m in messages},
                recipient__in={m.recipient for m in messages},
            ).values_list("tenant_id", "recipient")
        )
        for message in messages:
            if message.state == S.RETRY_SCHEDULED:  # a due retry starts a new round
                batch.change(message, round=message.round + 1, next_attempt_at=None)
                batch.event(message, E.REQUEUED, detail={"reason": "retry due"})
            if _validate_one(batch, message, templates, suppressed, now):
                go_on.append(message.pk)
        batch.write()
    return go_on


def _current_templates(messages: list[Message]) -> dict:
    if not messages:
        return {}
    query = Q()
    for m in messages:
        query |= Q(tenant_id=m.tenant_id, name=m.template_name, language=m.template_language)
    return {(t.tenant_id, t.name, t.language): t for t in MessageTemplate.objects.filter(query)}


def _validate_one(batch, message, templates, suppressed, now) -> bool:
    tenant, sender = message.tenant, message.sender
    if not tenant.active or sender.status != SenderStatus.ACTIVE:
        reason = "tenant inactive" if not tenant.active else f"sender {sender.status}"
        batch.event(
            message,
            E.SENDER_BLOCKED,
            detail={"reason": reason},
            dedupe_key=f"sender_blocked:{message.round}",
        )
        return False  # stays queued; re-driven once the sender is active again
    if (tenant.pk, message.recipient) in suppressed:
        _error(
            batch,
            message,
            code="recipient_suppressed",
            title="Recipient opted out",
            error_class=ErrorClass.INVALID,
        )
        batch.event(message, E.REJECTED, detail={"reason": "recipient suppressed"})
        return False
    if message.kind == "text":  # no template; Meta enforces the window (131047: rejected)
        batch.event(message, E.VALIDATED, detail={"kind": "text"})
        return True
    template = templates.get((tenant.pk, message.template_name, message.template_language))
    status = template.status if template else "DELETED"
    if status in WAITING:
        _error(
            batch,
            message,
            code=f"template_{status.lower()}",
            title=f"Template is {status}",
            error_class=ErrorClass.COOL_DOWN,
        )
        _schedule(batch, message, TEMPLATE_WAIT_SECONDS, now, f"template {status}")
        return False
    if status not in SENDABLE:
        _error(
            batch,
            message,
            code="template_not_sendable",
            title=f"Template is {status}",
            error_class=ErrorClass.INVALID,
        )
        batch.event(message, E.REJECTED, detail={"reason": f"template {status}"})
        return False
    batch.event(message, E.VALIDATED, detail={"template_status": status})
    return True


# ==================================================================================================
# transform
# ==================================================================================================


def build_payload(message: Message) -> dict:
    """The canonical Meta send payload (docs/meta-api.md §1.2, §1.4)."""
    if message.kind == "text":
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.recipient,
            "type": "text",
            "text": {"body": message.text_body},
            "biz_opaque_callback_data": str(message.pk),
        }
    template: dict = {
        "name": message.template_name,
        "language": {"code": message.template_language},
    }
    if message.parameters:
        template["components"] = message.parameters
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.recipient,
        "type": "template",
        "template": template,
        "biz_opaque_callback_data": str(message.pk),
    }


def step_transform(ids: list) -> list:
    batch = _Batch()
    with transaction.atomic():
        messages = list(Message.objects.filter(pk__in=ids, state=S.QUEUED))
        for message in messages:
            payload = build_payload(message)
            if payload != message.payload:
                batch.change(message, payload=payload)
            batch.event(message, E.PAYLOAD_BUILT, detail={"payload": payload})
        batch.write()
    crash_point("after_transform")
    return [m.pk for m in messages]


# ==================================================================================================
# submit
# ==================================================================================================


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=settings.WAYPOST_SUBMIT_CONCURRENCY, thread_name_prefix="submit"
    )


def step_submit(ids: list) -> list:
    now = timezone.now()
    messages = list(Message.objects.filter(pk__in=ids).select_related("tenant", "sender"))
    already = _mark_stuck_and_collect_answered(messages, now)
    ready = [m for m in messages if m.state == S.QUEUED and m.payload]
    allowed, deferred = _rate_limit(ready)
    for (queue, delay), group in deferred.items():
        dispatch.enqueue_messages(group, queue=queue, countdown=delay, start="submit")

    claimed = _claim(allowed)
    crash_point("before_http")
    results = list(_executor().map(_send_one, claimed))
    crash_point("after_http")
    with transaction.atomic():
        record(
            [
                NewEvent(m.pk, E.SUBMIT_RESPONDED, P, round=m.round, detail=r.as_detail())
                for m, r in zip(claimed, results, strict=True)
            ]
        )
    crash_point("after_submit_recorded")
    return already + [m.pk for m in claimed]


def _mark_stuck_and_collect_answered(messages: list[Message], now) -> list:
    """For messages already ``submitting``: those whose answer is recorded go on to
    check_acceptance (a redelivered task); those whose worker died mid-request become
    ``unknown`` (the request may have reached Meta: never resend); recent ones are in flight
    elsewhere and are left alone."""
    submitting = [m for m in messages if m.state == S.SUBMITTING]
    if not submitting:
        return []
    answered = set(_answers(submitting))
    stuck_before = now - timedelta(seconds=settings.WAYPOST_SUBMIT_STUCK_AFTER)
    stuck = [m for m in submitting if m.pk not in answered and m.state_changed_at < stuck_before]
    if stuck:
        batch = _Batch()
        for message in stuck:
            _error(
                batch,
                message,
                code="worker_lost",
                title="The worker stopped during the submit; the outcome is unknown",
                error_class=ErrorClass.AMBIGUOUS,
            )
            batch.event(message, E.SUBMIT_UNKNOWN, detail={"reason": "worker lost mid-submit"})
        with transaction.atomic():
            batch.write()
    return [m.pk for m in submitting if m.pk in answered]


def _answers(messages: list[Message]) -> dict:
    """{message id: recorded answer} for the messages' current rounds, in one query."""
    rounds = Q(*[Q(message_id=m.pk, round=m.round) for m in messages], _connector=Q.OR)
    return dict(
        MessageEvent.objects.filter(rounds, type=E.SUBMIT_RESPONDED).values_list(
            "message_id", "detail"
        )
    )


def _rate_limit(messages: list[Message]) -> tuple[list[Message], dict]:
    """Split into what may go now and what must wait, as {(queue, delay): [ids]}."""
    limiter = get_rate_limiter()
    allowed: list[Message] = []
    deferred: dict[tuple[str, float], list] = defaultdict(list)
    by_sender: dict = defaultdict(list)
    for m in messages:
        by_sender[m.sender_id].append(m)
    for group in by_sender.values():
        sender = group[0].sender
        rate = sender.messages_per_second
        granted, wait = limiter.acquire(
            f"sender:{sender.phone_number_id}",
            rate=rate,
            count=len(group),
            burst=max(1.0, rate * settings.WAYPOST_RATE_BURST_SECONDS),
        )
        for m in group[granted:]:
            deferred[(m.tenant.queue_name, round(max(wait, 0.05), 2))].append(m.pk)
        for m in group[:granted]:
            pair_wait = limiter.pair_acquire(
                f"{sender.phone_number_id}:{m.recipient}",
                interval=settings.WAYPOST_PAIR_INTERVAL,
                burst=settings.WAYPOST_PAIR_BURST,
            )
            if pair_wait > 0:
                deferred[(m.tenant.queue_name, round(pair_wait, 2))].append(m.pk)
            else:
                allowed.append(m)
    return allowed, deferred


def _claim(messages: list[Message]) -> list[Message]:
    """queued → submitting, committed before any request leaves (the no-double-send rule)."""
    if not messages:
        return []
    by_id = {m.pk: m for m in messages}
    batch = _Batch()
    with transaction.atomic():
        claimable = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=list(by_id), state=S.QUEUED)
            .values_list("pk", flat=True)
        )
        claimed = [by_id[pk] for pk in claimable]
        for message in claimed:
            batch.change(message, attempts=message.attempts + 1)
            batch.event(
                message,
                E.SUBMIT_STARTED,
                detail={"attempt": message.attempts, "request": message.payload},
            )
        batch.write()
    return claimed


def _send_one(message: Message) -> SubmitResult:
    sender = message.sender
    try:
        credential = sender.credential()
    except MissingCredential as exc:
        return SubmitResult(outcome=SubmitOutcome.NOT_SENT, error=f"MissingCredential: {exc}")
    provider = get_provider(sender.provider)
    return provider.send_message(
        credential=credential, phone_number_id=sender.phone_number_id, payload=message.payload
    )


# ==================================================================================================
# check_acceptance
# ==================================================================================================


def step_check_acceptance(ids: list) -> list:
    now = timezone.now()
    batch, accepted = _Batch(), []
    with transaction.atomic():
        messages = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids, state=S.SUBMITTING)
            .select_related("tenant", "sender")
        )
        if not messages:
            return []
        answers = _answers(messages)
        blocked_senders: dict = {}
        for message in messages:
            answer = answers.get(message.pk)
            if answer is None:
                continue  # still in flight, or its worker died: the submit step handles it
            if _check_one(batch, message, answer, now, blocked_senders):
                accepted.append(message.pk)
        wamids = [m.provider_message_id for m in messages if m.pk in accepted]
        if wamids:  # statuses that beat the send response were parked: apply them now
            transaction.on_commit(lambda: orphans_resolve(wamids=wamids))
        for sender, reason in blocked_senders.values():
            type(sender).objects.filter(pk=sender.pk, status=SenderStatus.ACTIVE).update(
                status=SenderStatus.BLOCKED, status_reason=reason[:255]
            )
        batch.write()
    return accepted


def _check_one(batch: _Batch, message: Message, answer: dict, now, blocked: dict) -> bool:
    result = SubmitResult(
        outcome=SubmitOutcome(answer["outcome"]),
        http_status=answer.get("http_status"),
        body=answer.get("body"),
        error=answer.get("error", ""),
    )
    if result.outcome == SubmitOutcome.RESPONSE:
        parsed = get_provider(message.sender.provider).parse_send(result)
        if parsed.wamid:
            batch.change(
                message,
                provider_message_id=parsed.wamid,
                next_attempt_at=None,
                error_code="",
                error_title="",
                error_details="",
                error_class="",
            )
            batch.event(
                message,
                E.ACCEPTED,
                source=EventSource.PROVIDER,
                detail={"wamid": parsed.wamid, "message_status": parsed.message_status},
            )
            if parsed.message_status != "accepted":  # held_for_quality_assessment (pacing)
                batch.event(
                    message,
                    E.HELD,
                    source=EventSource.PROVIDER,
                    detail={"message_status": parsed.message_status},
                )
            return True
        kind = classify(parsed.error_code, result.http_status)
        _error(
            batch,
            message,
            code=parsed.error_code or f"http_{result.http_status}",
            title=parsed.error_title,
            details=parsed.error_details,
            error_class=kind.error_class,
        )
    elif result.error.startswith("MissingCredential"):
        kind = Classification(ErrorClass.ALERT_TENANT)
        _error(
            batch,
            message,
            code="missing_credential",
            title=result.error,
            error_class=kind.error_class,
        )
    elif result.outcome == SubmitOutcome.NOT_SENT:
        kind = Classification(ErrorClass.RETRY_BACKOFF)
        _error(batch, message, code="not_sent", title=result.error, error_class=kind.error_class)
    else:
        kind = Classification(ErrorClass.AMBIGUOUS)
        _error(batch, message, code="no_response", title=result.error, error_class=kind.error_class)
    _apply_classification(batch, message, kind, now, blocked)
    return False


def _apply_classification(batch, message, kind: Classification, now, blocked) -> None:
    tenant = message.tenant
    if kind.error_class == ErrorClass.NEVER_RETRY:
        batch.event(message, E.REJECTED, detail={"error_code": message.error_code})
    elif kind.error_class == ErrorClass.AMBIGUOUS:
        batch.event(
            message,
            E.SUBMIT_UNKNOWN,
            detail={
                "error_code": message.error_code,
                "grace_seconds": tenant.ambiguous_grace_seconds,
            },
        )
    elif kind.error_class == ErrorClass.ALERT_TENANT:
        # Stop this sender; the message goes back to queued (a new round) and waits for it.
        blocked[message.sender_id] = (
            message.sender,
            f"{message.error_code}: {message.error_title}",
        )
        batch.change(message, round=message.round + 1, enqueued_at=None)
        batch.event(
            message,
            E.REQUEUED,
            detail={"reason": "sender blocked", "error_code": message.error_code},
        )
        batch.event(message, E.SENDER_BLOCKED, detail={"reason": message.error_code})
    elif kind.error_class == ErrorClass.COOL_DOWN:
        if kind.scope == "template" and message.template_id:
            MessageTemplate.objects.filter(pk=message.template_id).update(
                status=TemplateStatus.PAUSED
            )
        _schedule(batch, message, kind.delay, now, f"cool-down ({kind.scope})")
    else:  # retry with backoff, within the tenant's caps
        window_ends = message.created_at + timedelta(seconds=tenant.retry_window_seconds)
        delay = backoff_delay(message.attempts)
        if message.attempts >= tenant.max_attempts or now + timedelta(seconds=delay) > window_ends:
            batch.change(message, error_class=ErrorClass.RETRIES_EXHAUSTED)
            batch.event(
                message,
                E.DEAD_LETTERED,
                detail={"attempts": message.attempts, "last_error": message.error_code},
            )
        else:
            _schedule(batch, message, delay, now, "backoff")
