"""Intake: the API's way in. ``message_create``, ``message_create_batch`` and ``message_cancel``.

Creating a message validates it against the stored template and the send-time rules first —
an invalid request creates nothing. A valid one is stored with its first ledger events and
published after the transaction commits (``messaging.send.dispatch``). ``Idempotency-Key`` is
unique per tenant and kept as long as the message: the same key with the same body returns the
same message (no second message, no second send); with a different body it is refused (409).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.db import insert_together
from core.errors import Conflict, NotFound, ValidationFailed, WaypostError
from core.lookups import ProcessCache
from media.services import media_check_components
from messaging.models import Message, MessageKind
from messaging.send import dispatch
from messaging.send.inputs import country_of, message_input
from messaging.send.windows import time_zones_for, window_stored
from messaging.states import (
    NOT_SUBMITTED,
    EventSource,
    EventType,
)
from messaging.track.inbound import service_window_open
from messaging.track.ledger import NewEvent, first_events, record
from templates_registry.models import MessageTemplate
from templates_registry.rules.limits import DEFAULT_TTL_SECONDS
from templates_registry.services import template_check_send
from tenants.models import SenderNumber, Tenant
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


# What a send is validated against — a tenant's templates (with their numbers) and its default
# sender — read at most once a second per process (core.lookups; cleared in this process when
# a template, sender or tenant is saved: messaging.signals). The drain's claim reads the
# template's status again before the message leaves.
send_lookups: ProcessCache = ProcessCache("send lookups")


def send_lookups_forget(**kwargs) -> None:
    """A template, sender or tenant changed: this process reads them again."""
    send_lookups.forget()


def _template(tenant_id, name: str, language: str) -> MessageTemplate | None:
    found = MessageTemplate.objects.select_related("sender").filter(
        tenant_id=tenant_id, name=name, language=language
    )[:1]  # unique per tenant: no ORDER BY to build
    return next(iter(found), None)


class _Templates:
    """A request's templates and default sender (from ``send_lookups``)."""

    def __init__(self, tenant: Tenant, sender: SenderNumber | None = None) -> None:
        self.tenant = tenant
        self._fixed = sender  # a campaign's sender: every message goes through it

    def get(self, name: str, language: str) -> MessageTemplate | None:
        tenant_id = self.tenant.pk
        return send_lookups.get(
            ("template", tenant_id, name, language), lambda: _template(tenant_id, name, language)
        )

    def sender_for(self, template: MessageTemplate | None) -> SenderNumber:
        """``template_sender``, the tenant's default sender read once per second at most."""
        if self._fixed is not None:
            return self._fixed
        if _own_template_sender(self.tenant, template):
            return template.sender
        tenant = self.tenant
        return send_lookups.get(
            ("default sender", tenant.pk), lambda: template_sender(tenant=tenant, template=None)
        )


def _own_template_sender(tenant: Tenant, template: MessageTemplate | None) -> bool:
    return bool(template and template.sender_id and template.sender.tenant_id == tenant.pk)


def template_sender(*, tenant: Tenant, template: MessageTemplate | None) -> SenderNumber:
    """Who sends a message of ``template``: the number it was submitted through (the template
    is approved in that number's WABA), else the tenant's default sender
    (``tenants.selectors``). 400 ``no_sender`` without one."""
    if _own_template_sender(tenant, template):
        return template.sender
    sender = sender_default(tenant=tenant)
    if sender is None:
        raise ValidationFailed("This tenant has no sender number.", code="no_sender")
    return sender


def _prepare(tenant: Tenant, key: str, body: dict, data: dict, cache: _Templates) -> _Prepared:
    """A message from ``data`` (``messaging.send.inputs``: the body, validated) after the checks
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
    media_check_components(tenant=tenant, components=spec["components"])
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
    _schedule(message, data)
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
    _schedule(message, data)
    return _Prepared(message, [_requested(message, key, body)])


def _schedule(message: Message, data: dict) -> None:
    """``send_at`` and ``send_window``: the message is not due before the first moment both
    allow (``next_attempt_at``; the drain wakes for it). The window is kept on the message with
    the recipient's time zones: the drain's claim checks it again before every attempt, a
    retry included. One that could never be sent — it would expire first, or the window never
    opens for this recipient — is refused."""
    now = message.state_changed_at
    send_at = data.get("send_at")
    if send_at is not None and send_at > now:
        message.send_at = message.next_attempt_at = send_at
    window = data.get("send_window")
    if window is not None and not window.is_always:
        zones = time_zones_for(
            recipient=message.recipient,
            user_id=message.recipient_user_id,
            default=message.tenant.time_zone or "UTC",
        )
        message.send_window = window_stored(window, zones)
        start = message.next_attempt_at or now
        opens = start if window.is_open(start, zones) else window.next_open(start, zones)
        if opens is None:
            raise ValidationFailed(
                "The send window never opens for this recipient: its time zones "
                f"({', '.join(zones)}) share no hour of it.",
                code="send_window_never_open",
                details=[{"field": "send_window", "code": "never_open"}],
            )
        if opens > now:
            message.next_attempt_at = opens
    due = message.next_attempt_at
    if due is not None and message.expires_at is not None and due >= message.expires_at:
        field = "send_window" if message.send_window and due != message.send_at else "send_at"
        raise ValidationFailed(
            f"'{field}' lets the message leave only after its time to live ends (ttl_seconds, "
            "or its category's default): it could never be sent.",
            code=f"{field}_after_expiry",
            details=[{"field": field, "code": "after_expiry"}],
        )


def _expires_at(data: dict, category: str):
    """A message not sent within its category's time to live (``DEFAULT_TTL_SECONDS``: an
    authentication code is worthless after Meta's 10 minutes) is not sent at all; the request's
    ``ttl_seconds`` wins."""
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


def _insert(prepared: list[_Prepared]) -> None:
    """The messages and their first events, in one statement (``core.db.insert_together``),
    published once committed. Inside a caller's transaction, in a savepoint: a taken key's
    ``IntegrityError`` leaves that transaction usable for the replay lookup."""
    messages = [p.message for p in prepared]
    rows = first_events([e for p in prepared for e in p.events])
    if connection.in_atomic_block:
        with transaction.atomic():
            insert_together(messages, rows)
    else:  # autocommit: the statement is the transaction, no BEGIN and COMMIT round trips
        insert_together(messages, rows)
    transaction.on_commit(lambda: _publish(messages))


def _publish(messages: list[Message]) -> None:
    """After the commit: nudge each tenant's dispatch once (``messaging.send.dispatch``) — on
    its bulk lane for a backlog (this request brought a full batch or more, or a campaign's
    messages), else on its express lane (``core.queues``)."""
    counts = Counter(m.tenant_id for m in messages)
    tenants = {m.tenant_id: m.tenant for m in messages}
    campaigns = {m.tenant_id for m in messages if m.campaign_id is not None}
    for tenant_id, tenant in tenants.items():
        backlog = counts[tenant_id] >= settings.WAYPOST_BATCH_SIZE or tenant_id in campaigns
        queue = tenant.bulk_queue_name if backlog else tenant.queue_name
        dispatch.nudge(tenant_id=tenant.pk, queue=queue)


def message_create(
    *, tenant: Tenant, idempotency_key: str, body: dict, data: dict | None = None
) -> tuple[Message, bool]:
    """Create and enqueue one message; (message, created). Replays return the stored one.
    ``data`` is ``body`` validated by ``messaging.send.inputs.message_input`` (done here when the
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
        _insert([prepared])
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


def message_create_batch(
    *,
    tenant: Tenant,
    items: list[dict],
    campaign_id=None,
    sender: SenderNumber | None = None,
    expires_at=None,
) -> list[BatchItemResult]:
    """Up to 1,000 messages (``messaging.send.inputs.BatchInput``), each with its own
    ``idempotency_key``; per-item results. Each item is validated on its own: valid items are
    stored and enqueued even when others are invalid.

    A campaign's release (``campaigns.feeder``) passes its id, its sender and the moment its
    time to live ends: every message is the campaign's, goes through that sender and expires
    then (when that is sooner than its own time to live)."""
    cache = _Templates(tenant, sender)
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
        if campaign_id is not None:
            prepared.message.campaign_id = campaign_id
            own = prepared.message.expires_at
            if expires_at is not None and (own is None or expires_at < own):
                prepared.message.expires_at = expires_at
        fresh[key] = prepared
        results.append(BatchItemResult(index, 202, prepared.message))
    if fresh:
        try:
            _insert(list(fresh.values()))
        except IntegrityError:
            if campaign_id is not None:
                # A campaign's keys are written by its feeder alone, under the campaign's lock:
                # taken means an earlier pass stored them. Answer with what it stored.
                return _stored_results(tenant, results)
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


def _stored_results(tenant: Tenant, results: list[BatchItemResult]) -> list[BatchItemResult]:
    """The fresh items of a batch whose insert met taken keys, answered with the messages
    stored under those keys (200); a key with nothing stored is an error of its own."""
    keys = [r.message.idempotency_key for r in results if r.status == 202]
    stored = {
        m.idempotency_key: m
        for m in Message.objects.filter(tenant=tenant, idempotency_key__in=keys)
    }
    for result in results:
        if result.status == 202:
            found = stored.get(result.message.idempotency_key)
            if found is None:
                raise Conflict(
                    "The batch's keys changed under it; send it again.", code="batch_conflict"
                )
            result.status, result.message = 200, found
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


def campaign_messages_cancel(*, campaign_id, reason: str, source: str = EventSource.API) -> int:
    """A cancelled campaign: each of its messages not yet submitted is cancelled (a ledger
    event each, under the messages' locks, in id order, a thousand at a time). Returns how
    many."""
    cancelled = 0
    while True:
        with transaction.atomic():
            ids = list(
                Message.objects.select_for_update()  # waits out a drain's claim, then re-reads
                .filter(campaign_id=campaign_id, state__in=NOT_SUBMITTED)
                .order_by("pk")
                .values_list("pk", "round")[:1000]
            )
            if not ids:
                return cancelled
            record(
                [
                    NewEvent(
                        pk,
                        EventType.CANCELLED,
                        source,
                        round=round_,
                        detail={"reason": reason, "campaign": str(campaign_id)},
                    )
                    for pk, round_ in ids
                ],
                locked=True,
            )
            cancelled += len(ids)
