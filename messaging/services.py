"""Writes on messages: what the API, tasks, the admin and the reconciler call.

Creating a message validates it against the stored template and the send-time rules first —
an invalid request creates nothing. A valid one is stored with its first ledger events and
published after the transaction commits. ``Idempotency-Key`` is unique per tenant and kept as
long as the message: the same key with the same body returns the same message (no second
message, no second send); with a different body it is refused (409).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.db import bulk_update, retry_transient
from core.errors import Conflict, NotFound, ValidationFailed, WaypostError
from messaging import dispatch, pipeline
from messaging.inbound import service_window_open
from messaging.inputs import country_of, message_input
from messaging.ledger import NewEvent, lock_messages, record
from messaging.models import Message, MessageKind
from messaging.stalls import stalls_mark
from messaging.states import (
    NOT_SUBMITTED,
    ErrorClass,
    EventSource,
    EventType,
    MessageState,
    StallReason,
)
from templates_registry.models import MessageTemplate
from templates_registry.services import template_check_send
from tenants.models import AmbiguousPolicy, SenderNumber, Tenant
from tenants.selectors import sender_default

log = logging.getLogger(__name__)


def request_hash(body: dict) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


@dataclass
class _Prepared:
    message: Message
    events: list[NewEvent] = field(default_factory=list)


class _Templates:
    """Per-request cache of a tenant's templates and default sender (batches reuse them)."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.templates: dict[tuple[str, str], MessageTemplate | None] = {}
        self._sender: SenderNumber | None = None

    def get(self, name: str, language: str) -> MessageTemplate | None:
        key = (name, language)
        if key not in self.templates:
            found = MessageTemplate.objects.select_related("sender").filter(
                tenant=self.tenant, name=name, language=language
            )[:1]  # unique per tenant: no ORDER BY to build
            self.templates[key] = next(iter(found), None)
        return self.templates[key]

    def sender_for(self, template: MessageTemplate | None) -> SenderNumber:
        """The number its template was submitted through (the template is approved in that
        number's WABA), else the tenant's default sender (``tenants.selectors``)."""
        if template and template.sender_id and template.sender.tenant_id == self.tenant.pk:
            return template.sender
        if self._sender is None:
            self._sender = sender_default(tenant=self.tenant)
        if self._sender is None:
            raise ValidationFailed("This tenant has no sender number.", code="no_sender")
        return self._sender


def _prepare(tenant: Tenant, key: str, body: dict, data: dict, cache: _Templates) -> _Prepared:
    """A message from ``data`` (``messaging.inputs``: the body, validated) after the checks
    that need the database; ``body`` is kept as sent (its hash makes replays safe)."""
    if not key or len(key) > 255:
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 characters.", code="idempotency_key_invalid"
        )
    if data["kind"] == MessageKind.TEXT:
        return _prepare_text(tenant, key, body, data, cache)
    spec = data["template"]
    template = cache.get(spec["name"], spec["language"])
    if template is None:
        raise ValidationFailed(
            f"No template {spec['name']!r} in language {spec['language']!r}.",
            code="template_not_found",
            details=[{"field": "template", "code": "not_found"}],
        )
    if not data["to"] and template.needs_phone_number:
        raise ValidationFailed(
            f"Template {template.name!r} is an authentication template with a code button: "
            "Meta sends those to phone numbers only (error 131062 otherwise). Give 'to'.",
            code="recipient_needs_phone_number",
            details=[{"field": "recipient", "code": "needs_phone_number"}],
        )
    if not template.is_sendable:
        raise ValidationFailed(
            f"Template {template.name!r} is {template.status}; only approved (or flagged) "
            "templates send.",
            code="template_not_approved",
            details=[{"field": "template", "code": "status"}],
        )
    check = template_check_send(
        template=template, components=spec["components"], policy=tenant.param_policy
    )
    message = Message(
        tenant=tenant,
        sender=cache.sender_for(template),
        recipient=data["to"],
        recipient_user_id=data["recipient"],
        recipient_country=country_of(data["to"], data["recipient"]),
        template=template,
        template_name=template.name,
        template_language=template.language,
        template_category=template.category,
        template_components=template.components,
        parameters=check.components,
        idempotency_key=key,
        request_hash=request_hash(body),
        metadata=data["metadata"],
        expires_at=_expires_at(data, template.category),
        state_changed_at=timezone.now(),
    )
    events = [_requested(message, key, body)]
    if check.sanitized:
        events.append(
            NewEvent(
                message.pk,
                EventType.SANITIZED,
                EventSource.API,
                detail={"changes": check.sanitized},
            )
        )
    return _Prepared(message, events)


def _prepare_text(tenant: Tenant, key: str, body: dict, data: dict, cache: _Templates) -> _Prepared:
    """A free-form text message: allowed only inside the 24-hour customer-service window
    (docs/meta-api.md §6; Meta answers 131047 otherwise)."""
    recipient, user_id = data["to"], data["recipient"]
    if not service_window_open(tenant=tenant, recipient=recipient, user_id=user_id):
        raise ValidationFailed(
            "Free-form messages can only be sent within 24 hours of the user's last message; "
            "send a template instead.",
            code="outside_service_window",
            details=[{"field": "to", "code": "outside_service_window"}],
        )
    message = Message(
        tenant=tenant,
        sender=cache.sender_for(None),
        recipient=recipient,
        recipient_user_id=user_id,
        recipient_country=country_of(recipient, user_id),
        kind=MessageKind.TEXT,
        text_body=data["text"]["body"],
        idempotency_key=key,
        request_hash=request_hash(body),
        metadata=data["metadata"],
        expires_at=_expires_at(data, ""),
        state_changed_at=timezone.now(),
    )
    return _Prepared(message, [_requested(message, key, body)])


# A message not sent within this many seconds is not sent at all, by template category (an
# authentication code is worthless after a few minutes); the request's ``ttl_seconds`` wins.
DEFAULT_TTL_SECONDS = {"AUTHENTICATION": 600}


def _expires_at(data: dict, category: str):
    ttl = data.get("ttl_seconds") or DEFAULT_TTL_SECONDS.get(category)
    return timezone.now() + timedelta(seconds=ttl) if ttl else None


def _requested(message: Message, key: str, body: dict) -> NewEvent:
    return NewEvent(
        message.pk,
        EventType.REQUESTED,
        EventSource.API,
        # The request itself is the message's row (its hash guards replays): not kept twice.
        detail={"idempotency_key": key},
    )


def _replay(tenant: Tenant, key: str, body: dict) -> Message | None:
    """The message already stored under ``key``, if any; 409 if its body differs."""
    existing = next(iter(Message.objects.filter(tenant=tenant, idempotency_key=key)[:1]), None)
    if existing is not None and existing.request_hash != request_hash(body):
        raise Conflict(
            "This Idempotency-Key was used with a different request body.",
            code="idempotency_key_reused",
            details=[{"message_id": str(existing.pk)}],
        )
    return existing


def _publish(messages: list[Message]) -> None:
    """After the commit: nudge each tenant's dispatch once (``messaging.dispatch``)."""
    tenants = {m.tenant_id: m.tenant for m in messages}
    for tenant in tenants.values():
        dispatch.nudge(tenant_id=tenant.pk, queue=tenant.queue_name)


def message_create(
    *, tenant: Tenant, idempotency_key: str, body: dict, data: dict | None = None
) -> tuple[Message, bool]:
    """Create and enqueue one message; (message, created). Replays return the stored one.
    ``data`` is ``body`` validated by ``messaging.inputs.message_input`` (done here when the
    caller has not)."""
    data = message_input(body) if data is None else data
    # Insert first, look for a replay only when the key is taken (or the request no longer
    # passes the checks — a replay answers with what was stored, whatever changed since):
    # a fresh request, the common case, costs no lookup.
    try:
        prepared = _prepare(tenant, idempotency_key, body, data, _Templates(tenant))
    except WaypostError:
        existing = _replay(tenant, idempotency_key, body)
        if existing is not None:
            return existing, False
        raise
    try:
        with transaction.atomic():
            prepared.message.save(force_insert=True)
            record(prepared.events, locked=True)  # a row this transaction inserted
            transaction.on_commit(lambda: _publish([prepared.message]))
    except IntegrityError:
        # A concurrent request with the same key won the insert: answer with its message.
        existing = _replay(tenant, idempotency_key, body)
        if existing is None:
            raise
        return existing, False
    return prepared.message, True


@dataclass
class BatchItemResult:
    index: int
    status: int
    message: Message | None = None
    error: dict | None = None


def message_create_batch(*, tenant: Tenant, items: list[dict]) -> list[BatchItemResult]:
    """Up to 1,000 messages (``messaging.inputs.BatchInput``), each with its own
    ``idempotency_key``; per-item results. Each item is validated on its own: valid items are
    stored and enqueued even when others are invalid."""
    cache = _Templates(tenant)
    keys = [item.get("idempotency_key") for item in items]
    stored = {
        m.idempotency_key: m
        for m in Message.objects.filter(tenant=tenant, idempotency_key__in=[k for k in keys if k])
    }
    results: list[BatchItemResult] = []
    fresh: dict[str, _Prepared] = {}
    for index, (item, key) in enumerate(zip(items, keys, strict=True)):
        body = {k: v for k, v in item.items() if k != "idempotency_key"}
        try:
            if not isinstance(key, str):
                raise ValidationFailed(
                    "Each message needs an 'idempotency_key'.", code="idempotency_key_invalid"
                )
            data = message_input(body)
            earlier = stored.get(key) or (fresh[key].message if key in fresh else None)
            if earlier is not None:
                if earlier.request_hash != request_hash(body):
                    raise Conflict(
                        "This idempotency_key was used with a different body.",
                        code="idempotency_key_reused",
                    )
                results.append(BatchItemResult(index, 200, earlier))
                continue
            prepared = _prepare(tenant, key, body, data, cache)
        except WaypostError as exc:
            results.append(BatchItemResult(index, exc.status, error=exc.as_dict()))
            continue
        fresh[key] = prepared
        results.append(BatchItemResult(index, 202, prepared.message))
    if fresh:
        try:
            with transaction.atomic():
                Message.objects.bulk_create([p.message for p in fresh.values()])
                record([e for p in fresh.values() for e in p.events], locked=True)
                new = [p.message for p in fresh.values()]
                transaction.on_commit(lambda: _publish(new))
        except IntegrityError:
            # A concurrent request took some keys: fall back to one at a time.
            for result in results:
                if result.status == 202:
                    key = result.message.idempotency_key
                    body = {k: v for k, v in items[result.index].items() if k != "idempotency_key"}
                    try:
                        result.message, created = message_create(
                            tenant=tenant, idempotency_key=key, body=body, data=None
                        )
                        result.status = 202 if created else 200
                    except WaypostError as exc:
                        result.status, result.message, result.error = (
                            exc.status,
                            None,
                            exc.as_dict(),
                        )
    return results


def message_cancel(
    *, tenant: Tenant, message_id, source: str = EventSource.API, reason: str = ""
) -> Message:
    """Cancel a message that has not been submitted yet (409 ``not_cancellable`` otherwise)."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(tenant=tenant, pk=message_id).first()
        if message is None:
            raise NotFound("No such message.", code="message_not_found")
        if message.state not in NOT_SUBMITTED:
            raise Conflict(
                f"A {message.state} message cannot be cancelled; only queued or "
                "retry_scheduled ones can.",
                code="not_cancellable",
            )
        detail = {"reason": reason} if reason else {}
        record(
            [NewEvent(message.pk, EventType.CANCELLED, source, round=message.round, detail=detail)],
            locked=True,
        )
    message.refresh_from_db()
    return message


def messages_expire(*, now=None, limit: int = 1000) -> int:
    """Waiting messages whose time to live passed without a drain claiming them (their sender
    blocked, their tenant paused): ``expired``, never sent. (A drain expires what it claims
    too late itself; this is the safety net.) Returns how many."""
    now = now or timezone.now()
    ids = list(
        Message.objects.filter(state__in=NOT_SUBMITTED, expires_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0

    def expire() -> int:
        with transaction.atomic():
            lock_messages(ids)
            waiting = list(
                Message.objects.filter(pk__in=ids, state__in=NOT_SUBMITTED, expires_at__lte=now)
            )
            for message in waiting:
                message.error_code, message.error_class = "expired", ErrorClass.INVALID
                message.error_title = "Not sent: its time to live passed first"
            bulk_update(waiting, ["error_code", "error_class", "error_title"])
            record(
                [
                    NewEvent(
                        m.pk,
                        EventType.EXPIRED,
                        EventSource.RECONCILER,
                        round=m.round,
                        detail={"expires_at": m.expires_at.isoformat()},
                    )
                    for m in waiting
                ],
                locked=True,
            )
        return len(waiting)

    return retry_transient(expire, what="expiring messages")


def message_requeue(*, message: Message, source: str, reason: str) -> Message:
    """Start a new round for ``message`` and dispatch it at once (resend after an unknown
    outcome, an operator's retry). For ``unknown`` this may send twice: callers decide."""
    with transaction.atomic():
        message = Message.objects.select_for_update().select_related("tenant").get(pk=message.pk)
        if message.state not in (
            MessageState.UNKNOWN,
            MessageState.HELD,
            MessageState.QUEUED,
            MessageState.RETRY_SCHEDULED,
        ):
            raise Conflict(
                f"A {message.state} message cannot be re-queued.", code="not_requeueable"
            )
        message.round += 1
        message.stalled, message.stalled_reason, message.stalled_at = False, "", None
        message.next_attempt_at = timezone.now()  # due from now (the sweep measures from it)
        message.save(
            update_fields=[
                "round",
                "stalled",
                "stalled_reason",
                "stalled_at",
                "next_attempt_at",
                "updated_at",
            ]
        )
        record(
            [
                NewEvent(
                    message.pk,
                    EventType.REQUEUED,
                    source,
                    round=message.round,
                    detail={"reason": reason},
                )
            ],
            locked=True,
        )
        transaction.on_commit(lambda: _publish([message]))
    return message


def message_resolve(*, message: Message, source: str, reason: str) -> Message:
    """An operator dealt with a stalled message (told the customer, checked with Meta): the
    stall flag is cleared with the reason; the state stays what the provider said."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message.pk)
        if not message.stalled:
            raise Conflict("The message is not stalled.", code="not_stalled")
        record(
            [
                NewEvent(
                    message.pk,
                    EventType.STALL_CLEARED,
                    source,
                    round=message.round,
                    detail={"reason": message.stalled_reason, "resolved": reason},
                    dedupe_key=f"stall_resolved:{message.stalled_reason}:{message.stalled_at}",
                )
            ],
            locked=True,
        )
        Message.objects.filter(pk=message.pk).update(
            stalled=False, stalled_reason="", stalled_at=None
        )
    message.refresh_from_db()
    return message


def message_mark_failed(*, message: Message, source: str, reason: str) -> Message:
    with transaction.atomic():
        record(
            [
                NewEvent(
                    message.pk,
                    EventType.MARKED_FAILED,
                    source,
                    round=message.round,
                    detail={"reason": reason},
                )
            ]
        )
        Message.objects.filter(pk=message.pk).update(
            stalled=False, stalled_reason="", stalled_at=None
        )
    message.refresh_from_db()
    return message


def messages_resume(*, tenant: Tenant) -> int:
    """A sender or the tenant became active again: its waiting messages are due from now, and
    the tenant's dispatch is nudged at once. Returns how many messages were waiting."""
    now = timezone.now()
    waiting = Message.objects.filter(tenant=tenant, state__in=NOT_SUBMITTED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=now)
    )
    count = waiting.update(next_attempt_at=now)
    dispatch.nudge(tenant_id=tenant.pk, queue=tenant.queue_name)
    return count


def messages_redrive(*, now=None, limit: int = 1000) -> dict[str, int]:
    """The sweep: the safety net under ``messaging.dispatch``, safe to run twice at once.

    * Nudges every tenant that has due messages. Normally each already has a drain pending or
      running and the nudge is a no-op; after a lost nudge (broker down at commit time, a
      process killed between commit and publish) this is what dispatches them. Each such
      tenant's queue is announced to the workers again first (a lost announcement leaves the
      queue unconsumed, whatever is published to it).
    * Records a ``redriven`` event (source ``reconciler``) on each message that has been due
      for longer than ``WAYPOST_REDRIVE_AFTER``: waiting that long means the normal path did
      not pick it up, and an operator should see it (zero when dispatch works).
    * Resolves submits whose worker died (``pipeline.submits_resolve_stuck``).
    """
    now = now or timezone.now()
    due = Message.objects.filter(dispatch.due_messages(now=now))
    tenants = list(
        Tenant.objects.filter(pk__in=due.values("tenant_id").distinct()).order_by("slug")
    )
    dispatch.broker_outage.reset()  # the sweep is how an outage ends: it tries the broker
    for tenant in tenants:
        dispatch.announce_queue(tenant.queue_name, again=True)
        dispatch.nudge(tenant_id=tenant.pk, queue=tenant.queue_name)
    stale_before = now - timedelta(seconds=settings.WAYPOST_REDRIVE_AFTER)
    stale = list(
        due.filter(
            Q(next_attempt_at__isnull=True, created_at__lte=stale_before)
            | Q(next_attempt_at__lte=stale_before)
        )
        .order_by("created_at")
        .values_list("pk", "round")[:limit]
    )
    if stale:
        log.warning(
            "re-drive: %d message(s) were due for over %ss",
            len(stale),
            settings.WAYPOST_REDRIVE_AFTER,
        )
        with transaction.atomic():
            record(
                [
                    NewEvent(
                        pk,
                        EventType.REDRIVEN,
                        EventSource.RECONCILER,
                        round=round_,
                        detail={"due_for_over_seconds": settings.WAYPOST_REDRIVE_AFTER},
                    )
                    for pk, round_ in stale
                ]
            )
    stuck = pipeline.submits_resolve_stuck(now=now, limit=limit)
    return {"tenants_nudged": len(tenants), "redriven": len(stale), "stuck_resolved": stuck}


def unknown_resolve(*, now=None, limit: int = 1000) -> dict[str, int]:
    """Apply each tenant's policy to submits whose outcome stayed unknown past its grace
    period: ``hold`` flags them ``stalled`` for an operator; ``resend`` starts a new round.
    Bounded in SQL: at most ``limit`` messages per run, oldest first."""
    now = now or timezone.now()
    counts = {"held": 0, "resent": 0}
    graces = Tenant.objects.values_list("ambiguous_grace_seconds", flat=True).distinct()
    due = Q()
    for grace in graces:  # a handful of distinct values: one condition each, no Python filter
        due |= Q(
            tenant__ambiguous_grace_seconds=grace,
            state_changed_at__lte=now - timedelta(seconds=grace),
        )
    if not graces:
        return counts
    messages = list(
        Message.objects.filter(due, state=MessageState.UNKNOWN, stalled=False)
        .select_related("tenant")
        .order_by("state_changed_at")[:limit]
    )
    held = {}
    for message in messages:
        if message.tenant.ambiguous_policy == AmbiguousPolicy.RESEND:
            message_requeue(
                message=message,
                source=EventSource.RECONCILER,
                reason="unknown outcome past the grace period (policy: resend)",
            )
            counts["resent"] += 1
        else:
            held[message.pk] = StallReason.UNKNOWN_OUTCOME
    if held:  # policy hold: flagged stalled for an operator
        counts["held"] = sum(stalls_mark(reasons=held, now=now).values())
    return counts
