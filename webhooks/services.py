"""Webhook ingestion: verify, store, answer — then process in batches.

Receiving (the hot path, in the view): check the signature in constant time, store the raw
delivery with one INSERT (``ON CONFLICT DO NOTHING`` on the body hash: a redelivered body is
stored once), answer 200, and ring the processor's doorbell (:func:`processing_kick`;
``core.coordination.Doorbell``): one pending ``webhooks.process`` run for the whole deployment,
``PROCESSING_LINGER`` later so that a burst is one batch — never one Celery task per webhook.

Processing (``deliveries_process``, a Celery task and the beat): claim pending deliveries with
``SELECT ... FOR UPDATE SKIP LOCKED``, have the provider that sent each parse it
(``BaseProvider.parse_webhook`` into ``whatsapp.reports``), and apply all their
events in one transaction through the services that own them: statuses and inbound messages
to ``messaging``, template updates to ``templates_registry``, a number's and its business
portfolio's health — throughput, messaging limit, quality rating, account alerts — to
``tenants`` (the senders found by the entry's WABA, or the route's own sender). A bad item
affects only itself; a delivery whose processing fails is marked ``failed`` (replayable)
without holding up the others. ``replay_webhooks`` re-processes stored deliveries:
idempotent by construction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone

from core import metrics, partitions
from core.alerts import alert
from core.coordination import Doorbell
from core.db import bound_cursor, bulk_update, is_transient, retry_transient
from core.logging import mask_phone, redact_route_tokens
from messaging.track.inbound import (
    inbound_record,
    orphans_resolve,
    preferences_apply,
    statuses_apply,
)
from templates_registry.services import template_apply_provider_update
from tenants.models import HealthSource, SenderNumber
from tenants.services import (
    portfolio_limit_learn,
    sender_alert_record,
    sender_quality_learn,
    sender_throughput_raise,
)
from webhooks.models import DeliveryStatus, RejectedWebhook, WebhookDelivery
from whatsapp import get_provider, provider_class
from whatsapp.registry import PROVIDERS
from whatsapp.reports import (
    AccountEvent,
    AlertEvent,
    CapabilityEvent,
    InboundReport,
    ItemError,
    NumberEvent,
    PreferenceReport,
    StatusReport,
    SystemErrorEvent,
    TemplateEvent,
    concerns_only,
)

log = logging.getLogger(__name__)
KEPT_HEADERS = (
    "Content-Type",
    "User-Agent",
    "Content-Length",
    *sorted({cls.signature_header for cls in PROVIDERS.values() if cls.signature_header}),
)
REJECTED_KEEP = 1000


def foreign_addresses(body: bytes, *, sender) -> list[str]:
    """The WABA and phone-number ids a body names that are not ``sender``'s (sorted; empty
    when it names only that sender, or is unreadable — then it is stored and flagged invalid)."""
    addresses = get_provider(sender.provider).webhook_addresses(body)
    if addresses is None:
        return []
    wabas, numbers = addresses
    return sorted((wabas - {sender.waba_id}) | (numbers - {sender.phone_number_id}))


def kept_headers(headers) -> dict[str, str]:
    return {name: headers[name] for name in KEPT_HEADERS if name in headers}


def delivery_store(*, provider: str, body: bytes, headers: dict, sender_id=None) -> None:
    """One INSERT, committed before the caller answers 200."""
    table = WebhookDelivery._meta.db_table
    with bound_cursor() as cursor:  # the body is sent as it is, not quoted into the text
        cursor.execute(
            f"INSERT INTO {table} (provider, sender_id, received_at, body, body_sha256, "  # noqa: S608
            "headers, status, events, error) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, '') "
            "ON CONFLICT DO NOTHING",  # (provider, body_sha256): per month on PostgreSQL
            [
                provider,
                sender_id,
                timezone.now(),
                body,
                hashlib.sha256(body).hexdigest(),
                json.dumps(headers),
                DeliveryStatus.PENDING,
            ],
        )


REJECTED_BODY_PREFIX = 512
# Stored deliveries, a partition a month on PostgreSQL (core.partitions). The body's hash is
# unique within each month; a resend across a month's end is stored again, and its statuses
# and messages are recognised by the ledger's dedupe keys and the inbound wamid.
DELIVERIES = partitions.Scheme(
    table=WebhookDelivery._meta.db_table,
    column="received_at",
    key="time",
    leaf_unique=("provider", "body_sha256"),
)
DONE = (DeliveryStatus.PROCESSED, DeliveryStatus.INVALID)  # deliveries retention may drop


def rejected_record(
    *, path: str, reason: str, remote_addr: str, headers: dict, body: bytes
) -> None:
    """Keep a capped record of calls that failed authentication, for security review.

    Redacted before it is stored: no route token in the path (``redact_route_tokens``: a valid
    token with a bad signature must not be handed to whoever reads the review), and phone
    numbers masked in the body's first ``REJECTED_BODY_PREFIX`` characters and in the headers
    (``core.logging.mask_phone``): a forged or misrouted body carries customers' numbers."""
    log.warning("webhook rejected: %s from %s", reason, remote_addr)
    # Mask before cutting, so a number across the cut is masked whole.
    excerpt = body[: REJECTED_BODY_PREFIX * 2].decode("utf-8", "replace")
    row = RejectedWebhook.objects.create(
        path=redact_route_tokens(path)[:200],
        reason=reason,
        remote_addr=remote_addr[:64],
        headers={
            name: mask_phone(value) if isinstance(value, str) else value
            for name, value in headers.items()
        },
        body_size=len(body),
        body_prefix=mask_phone(excerpt)[:REJECTED_BODY_PREFIX],
    )
    if row.pk % 100 == 0:  # trim now and then, not on every call
        keep_from = RejectedWebhook.objects.order_by("-pk").values_list("pk", flat=True)[
            REJECTED_KEEP - 1 : REJECTED_KEEP
        ]
        if keep_from:
            RejectedWebhook.objects.filter(pk__lt=keep_from[0]).delete()


# A ring runs the processor this long later, so what arrives meanwhile is one batch.
PROCESSING_LINGER = 0.25
# Published from a thread of this process: a webhook never waits on the broker (a dead one
# would cost each delivery the broker's connection timeout).
_processing = Doorbell(
    "webhooks", task="webhooks.process", linger=PROCESSING_LINGER, background=True
)


def processing_kick() -> None:
    """Ask for the stored deliveries to be processed soon. Never raises and never waits on the
    broker; with it or Redis down, the 5-second beat and the reconciler process them."""
    _processing.ring()


# --- processing --------------------------------------------------------------------------------


def _apply(events: list) -> Counter:
    counts: Counter = Counter()
    statuses = [e for e in events if isinstance(e, StatusReport)]
    if statuses:
        matched = statuses_apply(reports=statuses)
        counts["statuses"] += len(statuses)
        counts["orphans"] += len({s.dedupe_key for s in statuses} - matched)
    inbound = [e for e in events if isinstance(e, InboundReport)]
    if inbound:
        counts["inbound"] += inbound_record(reports=inbound)
    preferences = [e for e in events if isinstance(e, PreferenceReport)]
    if preferences:
        counts["preferences"] += preferences_apply(reports=preferences)
    # Templates (and portfolios) in one order for every processor (no deadlocks on their rows).
    for e in sorted(events, key=_lock_order):
        if isinstance(e, TemplateEvent):
            template_apply_provider_update(
                waba_id=e.waba_id,
                template_id=e.template_id,
                name=e.name,
                language=e.language,
                event=e.event if e.kind == "status" else "",
                reason=e.reason,
                quality=e.quality,
                new_category=e.new_category,
                correct_category=e.correct_category,
                category_update_at=e.category_update_at,
                components=e.components,
            )
            counts["templates"] += 1
        elif isinstance(e, NumberEvent) or _routed(e, NumberEvent):
            number, route_sender = (e.event, e.sender) if isinstance(e, _Routed) else (e, None)
            if number.messages_per_second:
                counts["senders_upgraded"] += sender_throughput_raise(
                    waba_id=number.waba_id,
                    display_phone_number=number.display_phone_number,
                    messages_per_second=number.messages_per_second,
                    reason=number.event,
                    sender=route_sender,
                )
            counts += _number_health(number, route_sender)
            counts["other"] += 1
        elif isinstance(e, CapabilityEvent) or _routed(e, CapabilityEvent):
            capability, route_sender = (e.event, e.sender) if isinstance(e, _Routed) else (e, None)
            counts += _limit_learn(
                capability.waba_id,
                capability.messaging_limit,
                capability.occurred_at,
                _senders_of(capability.waba_id, route_sender),
            )
            counts["other"] += 1
        elif isinstance(e, AlertEvent) or _routed(e, AlertEvent):
            account_alert, route_sender = (
                (e.event, e.sender) if isinstance(e, _Routed) else (e, None)
            )
            counts += _alert_record(account_alert, _senders_of(account_alert.waba_id, route_sender))
            counts["other"] += 1
        elif isinstance(e, ItemError):
            log.warning("webhook item not understood at %s: %s", e.where, e.error)
            counts["item_errors"] += 1
        elif isinstance(e, AccountEvent | SystemErrorEvent):
            counts["other"] += 1
    return counts


def _lock_order(event) -> tuple:
    inner = event.event if isinstance(event, _Routed) else event
    return (
        type(inner).__name__,
        getattr(inner, "template_id", ""),
        getattr(inner, "waba_id", ""),
    )


@dataclass(frozen=True)
class _Routed:
    """A number's or the business's event (throughput, limit, quality, alert) that came
    through a sender's own route: it may change that sender (and its portfolio) only, whatever
    other number of the WABA the body names."""

    event: NumberEvent | CapabilityEvent | AlertEvent
    sender: SenderNumber


def _routed(event, kind: type) -> bool:
    return isinstance(event, _Routed) and isinstance(event.event, kind)


# --- a number's and its portfolio's health (tenants.services) ----------------------------------
#
# Whose: the route's own sender when the event came through one; else the senders of the WABA
# the entry names (a WABA is one tenant's), each portfolio among them once.


def _senders_of(waba_id: str, route_sender: SenderNumber | None) -> list[SenderNumber]:
    if route_sender is not None:
        return [route_sender]
    return list(
        SenderNumber.objects.filter(waba_id=waba_id).select_related("tenant").order_by("pk")
    )


def _by_display(senders: list[SenderNumber], display_phone_number: str) -> SenderNumber | None:
    if len(senders) == 1 and not display_phone_number:
        return senders[0]
    return next(
        (s for s in senders if _same_digits(s.display_phone_number, display_phone_number)), None
    )


def _same_digits(a: str, b: str) -> bool:
    a, b = (re.sub(r"\D", "", number) for number in (a, b))
    return bool(a) and a == b


def _limit_learn(waba_id: str, value: str, at, senders: list[SenderNumber], *, via=None) -> Counter:
    counts: Counter = Counter()
    if not value:
        return counts
    if not senders:
        log.warning("messaging limit %r for WABA %s: no sender has that WABA", value, waba_id)
        counts["health_unmatched"] += 1
        return counts
    portfolios = {(s.tenant_id, s.business_id): s for s in senders}
    for (_, business_id), sender in sorted(portfolios.items(), key=lambda kv: kv[0][1]):
        counts["limits_changed"] += portfolio_limit_learn(
            tenant=sender.tenant,
            business_id=business_id,
            value=value,
            source=HealthSource.WEBHOOK,
            sender=via if via is not None and via.business_id == business_id else None,
            at=at,
        )
    return counts


def _number_health(number: NumberEvent, route_sender: SenderNumber | None) -> Counter:
    """``phone_number_quality_update``: the portfolio's limit, and the number's quality when
    the event says one."""
    if not (number.messaging_limit or number.quality):
        return Counter()
    senders = _senders_of(number.waba_id, route_sender)
    own = route_sender or _by_display(senders, number.display_phone_number)
    counts = _limit_learn(
        number.waba_id, number.messaging_limit, number.occurred_at, senders, via=own
    )
    if number.quality:
        if own is None:
            log.warning(
                "quality %s for number %s of WABA %s: no such sender",
                number.quality,
                mask_phone(number.display_phone_number),
                number.waba_id,
            )
            counts["health_unmatched"] += 1
        else:
            counts["quality_changed"] += sender_quality_learn(
                sender=own,
                quality=number.quality,
                source=HealthSource.WEBHOOK,
                at=number.occurred_at,
                detail={"event": number.event},
            )
    return counts


def _alert_record(account_alert: AlertEvent, senders: list[SenderNumber]) -> Counter:
    """``account_alerts``: on the number it names (``PHONE_NUMBER``), else on the portfolio —
    the WABA's senders' (the ``BUSINESS`` id Meta names, when one of them has it)."""
    counts: Counter = Counter()
    if not senders:
        log.warning(
            "account alert %s for WABA %s: no sender has that WABA",
            account_alert.event,
            account_alert.waba_id,
        )
        counts["health_unmatched"] += 1
        return counts
    sender = None
    if account_alert.entity_type == "PHONE_NUMBER":
        sender = next((s for s in senders if s.phone_number_id == account_alert.entity_id), None)
    business_ids = [s.business_id for s in senders]
    if sender is not None:
        business_id = sender.business_id
    elif account_alert.entity_type == "BUSINESS" and account_alert.entity_id in business_ids:
        business_id = account_alert.entity_id
    else:
        business_id = business_ids[0]
    recorded = sender_alert_record(
        tenant=senders[0].tenant,
        alert_type=account_alert.event,
        severity=account_alert.severity,
        status=account_alert.status,
        description=account_alert.description,
        entity_type=account_alert.entity_type,
        entity_id=account_alert.entity_id,
        sender=sender,
        business_id=business_id,
        source=HealthSource.WEBHOOK,
        at=account_alert.occurred_at,
    )
    counts["alerts"] += recorded is not None
    return counts


def _own_events(row: WebhookDelivery, events: list, senders: dict) -> list:
    """A delivery that came through a sender's own route (360dialog) may only change that
    sender's data: anything naming another number or WABA becomes an item error. (The endpoint
    already refuses such bodies; this also covers deliveries stored before that, and replays.)

    The route's token says which sender posted, so the route decides whose data an event may
    touch, not the body: a template, number or account event that names no WABA is the
    route's sender's WABA's (never looked up across all WABAs), and a number's or the
    business's event (throughput, limit, quality, alert) changes the route's own number and
    portfolio only (:class:`_Routed`)."""
    if not provider_class(row.provider).per_sender_webhooks:
        return events  # the app-wide route, signed: the provider speaks for every number
    sender = senders.get(row.sender_id)
    if sender is None:  # the sender was deleted since: nothing to attribute it to
        return [ItemError("delivery", "its route's sender no longer exists")]
    own: list = []
    for event in events:
        if isinstance(event, TemplateEvent | NumberEvent | AccountEvent) and not event.waba_id:
            event = replace(event, waba_id=sender.waba_id)
        if not concerns_only(event, waba_id=sender.waba_id, phone_number_id=sender.phone_number_id):
            own.append(ItemError("delivery", "names another sender's number or WABA"))
        elif isinstance(event, NumberEvent):
            if _same_number(event.display_phone_number, sender.display_phone_number):
                own.append(_Routed(event, sender))
            else:
                own.append(ItemError("delivery", "names another number of the WABA"))
        elif isinstance(event, AlertEvent):
            if event.entity_type == "PHONE_NUMBER" and event.entity_id != sender.phone_number_id:
                own.append(ItemError("delivery", "names another number of the WABA"))
            else:
                own.append(_Routed(event, sender))
        elif isinstance(event, CapabilityEvent):
            own.append(_Routed(event, sender))
        else:
            own.append(event)
    return own


def _same_number(named: str, own: str) -> bool:
    """Does a display number a body names denote the route's own number? (Either unknown:
    the route speaks for its own number only, so it does.)"""
    named, own = (re.sub(r"\D", "", number) for number in (named, own))
    return not named or not own or named == own


def _process(rows: list[WebhookDelivery]) -> Counter:
    now = timezone.now()
    events: list = []
    senders = SenderNumber.objects.in_bulk({r.sender_id for r in rows if r.sender_id})
    for row in rows:
        parsed = get_provider(row.provider).parse_webhook(bytes(row.body))
        row.processed_at = now
        row.events = len(parsed.events)
        if parsed.invalid:
            row.status, row.error = DeliveryStatus.INVALID, parsed.invalid
            log.warning("webhook delivery %s is invalid: %s", row.pk, parsed.invalid)
        else:
            own = _own_events(row, parsed.events, senders)
            events += own
            # An item the parser did not understand is kept on the delivery, never dropped:
            # the delivery can be replayed (replay_webhooks) once the parser knows better.
            item_errors = [f"{e.where}: {e.error}" for e in own if isinstance(e, ItemError)]
            if item_errors:
                row.status = DeliveryStatus.PARTIAL
                row.error = "; ".join(item_errors)[:2000]
            else:
                row.status, row.error = DeliveryStatus.PROCESSED, ""
    counts = _apply(events)
    bulk_update(rows, ["status", "error", "events", "processed_at"])
    return counts


def deliveries_process(*, limit: int = 500, ids: list[int] | None = None) -> Counter:
    """Process up to ``limit`` pending deliveries (or exactly ``ids``) in one transaction;
    if that fails, one delivery at a time, marking the ones that can never succeed
    ``failed``. A transient database error (deadlock, lost connection) fails nothing: the
    whole transaction is run again (``core.db.retry_transient``), and if it still fails the
    deliveries stay pending for the next run."""
    return retry_transient(lambda: _process_claimed(limit, ids), what="webhook processing")


def _process_claimed(limit: int, ids: list[int] | None) -> Counter:
    with transaction.atomic():
        query = WebhookDelivery.objects.select_for_update(skip_locked=True)
        query = (
            query.filter(pk__in=ids)
            if ids is not None
            else query.filter(status=DeliveryStatus.PENDING)
        )
        rows = list(query.order_by("pk")[:limit])
        if not rows:
            return Counter()
        try:
            with transaction.atomic():
                counts = _process(rows)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("webhook batch failed; processing its deliveries one by one")
            counts = Counter()
            for row in rows:
                try:
                    with transaction.atomic():
                        counts += _process([row])
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    row.status, row.error = DeliveryStatus.FAILED, repr(exc)[:2000]
                    row.save(update_fields=["status", "error"])
        counts["deliveries"] += len(rows)
        for row in rows:
            metrics.webhook_deliveries.labels(status=row.status).inc()
    return counts


def deliveries_drain(*, budget_seconds: float = 20.0) -> Counter:
    """Process pending deliveries until none are left or the time budget is spent. Answers
    the processor's doorbell first: a delivery stored from now on rings for the next run.
    Stopped by the budget while its last batch still found work, it rings the doorbell
    itself: what is left is processed by the next run at once, not at the 5-second beat."""
    _processing.answered()
    started, total = time.monotonic(), Counter()
    while True:
        counts = deliveries_process()
        if not counts:
            break
        total += counts
        if time.monotonic() - started >= budget_seconds:
            processing_kick()
            break
    if total["orphans"]:  # a later delivery may have given their messages a wamid
        total["orphans_resolved"] = orphans_resolve()
    return total


def deliveries_overdue(*, older_than: timedelta, now=None, limit: int = 5000) -> int:
    """Process deliveries stored but still pending after ``older_than`` — the ring and the
    5-second beat both missed them (worker down, broker down) — and say so loudly. Returns
    how many there were."""
    now = now or timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, received_at__lte=now - older_than
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        alert(
            f"{len(ids)} webhook deliveries waited over {int(older_than.total_seconds())}s "
            "to be processed; processing them now",
            level="error",
            count=len(ids),
        )
        for start in range(0, len(ids), 500):
            deliveries_process(ids=ids[start : start + 500])
    return len(ids)


def deliveries_replay(*, since: datetime | None = None, delivery_id: int | None = None) -> int:
    """Re-process stored deliveries (all since ``since``, or one). Idempotent: the ledger
    dedupes every fact, and the state does not depend on order."""
    query = WebhookDelivery.objects.all()
    if delivery_id is not None:
        query = query.filter(pk=delivery_id)
    if since is not None:
        query = query.filter(received_at__gte=since)
    ids = list(query.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), 500):
        deliveries_process(ids=ids[start : start + 500])
    return len(ids)


def deliveries_prune(*, older_than: timedelta, now=None, batch_size: int = 5000) -> int:
    """Delete processed (and invalid) deliveries received before ``older_than`` ago: their
    facts live on in the ledger. Pending, partial and failed ones stay (they are still work or
    replayable). Whole months go first, as tables (``core.partitions``); then row by row.
    Returns how many were deleted."""
    cutoff = (now or timezone.now()) - older_than
    done = 0
    for month in partitions.months(DELIVERIES):  # whole months first (core.partitions)
        if partitions.next_month(month) > cutoff:
            break
        try:
            retired = partitions.retire(
                DELIVERIES, month, keep="row.status NOT IN (%s, %s)", params=list(DONE)
            )
        except DatabaseError as exc:  # a busy table: the next run's
            if not is_transient(exc):
                raise
            log.warning("webhook deliveries of %s left for the next run: %s", month, exc)
            continue
        done += retired.dropped if retired else 0
    while True:
        ids = list(
            WebhookDelivery.objects.filter(
                status__in=DONE,
                received_at__lt=cutoff,
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return done
        done += WebhookDelivery.objects.filter(pk__in=ids).delete()[0]
