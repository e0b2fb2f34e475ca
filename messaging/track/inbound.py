"""What comes back from the provider, applied to the ledger: status reports (with orphan
parking) and inbound messages (contacts, the service window, opt-outs).

Called by the webhook processor inside its transaction, many reports at a time, with a fixed
number of queries per batch. Every status becomes a ledger event whose dedupe key is
``(wamid, status, timestamp)``: the same fact from two deliveries is one row, and the state
projection makes the order they arrive in irrelevant.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from callbacks.services import Item, callbacks_enqueue
from messaging.models import Contact, InboundMessage, Message, OrphanStatus, Suppression
from messaging.states import EventSource, EventType
from messaging.track.contacts import contact_resolve, marketing_preference_record, window_open
from messaging.track.ledger import NewEvent, lock_messages, record
from messaging.track.stalls import stalls_clear
from tenants.models import SenderNumber
from whatsapp import provider_class
from whatsapp.errors import Policy
from whatsapp.reports import InboundReport, PreferenceReport, StatusReport

STATUS_EVENTS = {
    "sent": EventType.STATUS_SENT,
    "delivered": EventType.STATUS_DELIVERED,
    "read": EventType.STATUS_READ,
    "failed": EventType.STATUS_FAILED,
}


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


@transaction.atomic  # a savepoint inside the webhook processor's transaction
def statuses_apply(*, reports: list[StatusReport], park: bool = True) -> set[str]:
    """Apply status reports; returns the dedupe keys of those matched to a message.

    A report is matched by its wamid, else by ``biz_opaque_callback_data`` (our message id —
    the webhook beat the send response, or the response was lost), and only to a message of
    the tenant that owns the phone number it came to. Unmatched reports are parked as
    ``OrphanStatus`` when ``park`` is set."""
    reports = [r for r in reports if r.status in STATUS_EVENTS]
    if not reports:
        return set()
    senders = {
        s.phone_number_id: s
        for s in SenderNumber.objects.filter(
            phone_number_id__in={r.phone_number_id for r in reports}
        )
    }
    # Find the messages without locks, then lock them all in id order (the ledger's one lock
    # order) and work on the locked rows: two processors never deadlock on them.
    wamids = {r.wamid for r in reports}
    found = set(Message.objects.filter(provider_message_id__in=wamids).values_list("pk", flat=True))
    found |= set(
        Message.objects.filter(
            pk__in={u for r in reports if (u := _uuid(r.biz_opaque_callback_data))}
        ).values_list("pk", flat=True)
    )
    locked = Message.objects.in_bulk(lock_messages(found)) if found else {}
    by_wamid = {m.provider_message_id: m for m in locked.values() if m.provider_message_id}
    by_id = {str(m.pk): m for m in locked.values()}

    events: list[NewEvent] = []
    changed: dict[Any, Message] = {}
    orphans: list[OrphanStatus] = []
    matched: set[str] = set()
    stopped: list = []  # (message, when): the user stopped marketing (§11.2)
    identified: set = set()  # (tenant id, wa_id, BSUID) shown together
    for report in reports:
        sender = senders.get(report.phone_number_id)
        message = by_wamid.get(report.wamid) or by_id.get(
            _uuid(report.biz_opaque_callback_data) or ""
        )
        if message is not None and (sender is None or message.tenant_id != sender.tenant_id):
            message = None  # never across tenants
        if message is None:
            if park:
                orphans.append(
                    OrphanStatus(
                        sender=sender,
                        wamid=report.wamid,
                        report=report.as_json(),
                        dedupe_key=report.dedupe_key,
                    )
                )
            continue
        matched.add(report.dedupe_key)
        if not message.provider_message_id:  # the send response was lost or not yet read
            message.provider_message_id = report.wamid
            by_wamid[report.wamid] = message
            changed[message.pk] = message
        if report.status == "failed" and report.has_error:
            message.error_code = str(report.error_code or "")
            message.error_title = report.error_title[:255]
            message.error_details = report.error_details
            message.error_class = report.error_class
            changed[message.pk] = message
            if report.error_policy == Policy.MARKETING_STOPPED:
                stopped.append((message, report.occurred_at))
        if _learn_identity(message, report):
            changed[message.pk] = message
        if report.pricing is not None and not message.pricing_type:
            message.pricing_model = report.pricing.model[:16]
            message.pricing_type = report.pricing.type[:32]
            message.pricing_category = report.pricing.category[:32]
            message.billable = report.pricing.billable
            message.priced_at = report.occurred_at
            changed[message.pk] = message
        if report.recipient_id and report.recipient_user_id:  # both: one user, one contact
            identified.add((message.tenant_id, report.recipient_id, report.recipient_user_id))
        events.append(
            NewEvent(
                message.pk,
                STATUS_EVENTS[report.status],
                EventSource.WEBHOOK,
                round=message.round,
                occurred_at=report.occurred_at,
                detail=report.raw,
                dedupe_key=report.dedupe_key,
            )
        )
    tenants = {m.tenant_id: m.tenant for m in locked.values()}
    for tenant_id, wa_id, user_id in sorted(identified - _linked(identified)):
        contact_resolve(tenant=tenants[tenant_id], wa_id=wa_id, user_id=user_id)
    for message, when in stopped:
        marketing_preference_record(
            tenant=tenants[message.tenant_id],
            wa_id=message.recipient,
            user_id=message.recipient_user_id,
            stop=True,
            at=when,
        )
    ranks_before = {m.pk: m.state_rank for m in locked.values() if m.stalled}
    # The status fields and the state projection in one UPDATE (one row version per message).
    record(events, locked=True, changed=list(changed.values()), fields=STATUS_FIELDS)
    if ranks_before:  # the missing status arrived: the stall clears itself, and says so
        stalls_clear(ranks_before=ranks_before)
    if orphans:
        OrphanStatus.objects.bulk_create(orphans, ignore_conflicts=True)
    return matched


STATUS_FIELDS = [
    "provider_message_id",
    "error_code",
    "error_title",
    "error_details",
    "error_class",
    "recipient",
    "recipient_user_id",
    "pricing_model",
    "pricing_type",
    "pricing_category",
    "billable",
    "priced_at",
]


def _linked(identified: set) -> set:
    """Which (tenant, wa_id, BSUID) triples one contact already holds (one query): only the
    others need resolving, so a steady stream of statuses costs no writes."""
    if not identified:
        return set()
    return set(
        Contact.objects.filter(
            tenant_id__in={t for t, _, _ in identified},
            wa_id__in={w for _, w, _ in identified},
            user_id__in={u for _, _, u in identified},
        ).values_list("tenant_id", "wa_id", "user_id")
    )


def _learn_identity(message: Message, report: StatusReport) -> bool:
    """Fill in the identifier the message was not addressed by, when the provider names it."""
    learned = False
    if not message.recipient and report.recipient_id:
        message.recipient, learned = f"+{report.recipient_id}", True
    if not message.recipient_user_id and report.recipient_user_id:
        message.recipient_user_id, learned = report.recipient_user_id[:160], True
    return learned


def preferences_apply(*, reports: list[PreferenceReport]) -> int:
    """``user_preferences``: a user stopped or resumed marketing messages from the business
    that owns the number. Applied in time order; an older report never overrides a newer."""
    senders = {
        s.phone_number_id: s
        for s in SenderNumber.objects.select_related("tenant").filter(
            phone_number_id__in={r.phone_number_id for r in reports}
        )
    }
    applied = 0
    for report in sorted(reports, key=lambda r: (r.occurred_at, r.wa_id, r.user_id)):
        sender = senders.get(report.phone_number_id)
        if sender is None or report.category != "marketing_messages":
            continue
        applied += marketing_preference_record(
            tenant=sender.tenant,
            wa_id=report.wa_id,
            user_id=report.user_id,
            stop=report.value == "stop",
            at=report.occurred_at,
        )
    return applied


def _read_by(sender) -> dict:
    """How a parked status of ``sender`` is read: its provider's error table (Meta's without
    a sender)."""
    return {"error_info": provider_class(sender.provider).error_info} if sender else {}


def orphans_resolve(*, wamids: list[str] | None = None) -> int:
    """Re-apply parked statuses (those for ``wamids``, or all); returns how many matched."""
    query = OrphanStatus.objects.filter(resolved_at__isnull=True, expired_at__isnull=True)
    if wamids is not None:
        query = query.filter(wamid__in=wamids)
    orphans = list(query.select_related("sender")[:5000])
    if not orphans:
        return 0
    reports = [  # the sender's provider reads what an older Waypost did not store
        StatusReport.from_json(o.report, **_read_by(o.sender)) for o in orphans
    ]
    matched = statuses_apply(reports=reports, park=False)
    OrphanStatus.objects.filter(dedupe_key__in=matched).update(resolved_at=timezone.now())
    return len(matched)


def orphans_expire(*, older_than: timedelta, now=None) -> int:
    """Give up on parked statuses no message claimed within ``older_than`` (a wamid from
    another system, a message deleted since): marked expired, kept for inspection."""
    now = now or timezone.now()
    return OrphanStatus.objects.filter(
        resolved_at__isnull=True, expired_at__isnull=True, received_at__lte=now - older_than
    ).update(expired_at=now)


def inbound_record(*, reports: list[InboundReport]) -> int:
    """Store inbound messages per tenant and contact, refresh each contact's last inbound
    time (the 24-hour window), and suppress contacts who send an opt-out keyword."""
    senders = {
        s.phone_number_id: s
        for s in SenderNumber.objects.select_related("tenant").filter(
            phone_number_id__in={r.phone_number_id for r in reports}
        )
    }
    stored = 0
    # One order for every processor (contacts, then each one's messages): no deadlocks.
    key = lambda r: (r.phone_number_id, r.wa_id, r.user_id, r.wamid)  # noqa: E731
    for report in sorted(reports, key=key):
        sender = senders.get(report.phone_number_id)
        if sender is None:
            continue  # not our number: nothing to attach it to
        tenant = sender.tenant
        contact = contact_resolve(
            tenant=tenant,
            wa_id=report.wa_id,
            user_id=report.user_id,
            parent_user_id=report.parent_user_id,
            username=report.username,
            profile_name=report.profile_name,
        )
        if contact.last_inbound_at is None or report.occurred_at > contact.last_inbound_at:
            Contact.objects.filter(pk=contact.pk).update(last_inbound_at=report.occurred_at)
        _, new = InboundMessage.objects.get_or_create(
            wamid=report.wamid,
            defaults={
                "tenant": tenant,
                "sender": sender,
                "contact": contact,
                "type": report.type,
                "text": report.text,
                "payload": report.payload,
                "context_wamid": report.context_wamid,
                "received_at": report.occurred_at,
                "raw": report.raw,
            },
        )
        stored += new
        if new:
            callbacks_enqueue(tenant_id=tenant.pk, items=[_inbound_item(report, contact)])
        keywords = {k.strip().upper() for k in tenant.opt_out_keywords.split(",") if k.strip()}
        said = {report.text.strip().upper(), report.payload.strip().upper()}
        if new and keywords & said:
            if contact.wa_id:
                Suppression.objects.get_or_create(
                    tenant=tenant, recipient=f"+{contact.wa_id}", defaults={"reason": "opt_out"}
                )
            else:
                Suppression.objects.get_or_create(
                    tenant=tenant, user_id=contact.user_id, defaults={"reason": "opt_out"}
                )
    return stored


def _inbound_item(report: InboundReport, contact: Contact) -> Item:
    return Item(
        type="inbound.received",
        data={
            "wamid": report.wamid,
            "from": f"+{contact.wa_id}" if contact.wa_id else None,
            "from_user_id": contact.user_id or None,
            "username": contact.username or None,
            "profile_name": report.profile_name or contact.profile_name,
            "type": report.type,
            "text": report.text,
            "payload": report.payload,
            "context_wamid": report.context_wamid or None,
            "received_at": report.occurred_at.isoformat(),
        },
    )


def service_window_open(*, tenant, recipient: str = "", user_id: str = "", now=None) -> bool:
    """Has the user written to this tenant in the last 24 hours (docs/meta-api.md §6)? By
    either identifier: the window is the user's (``messaging.track.contacts``)."""
    return window_open(tenant=tenant, recipient=recipient, user_id=user_id, now=now)
