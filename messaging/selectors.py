"""Reads of messages; every read is scoped by ``tenant``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Concat, Substr, TruncDate
from django.utils import timezone

from core.errors import NotFound
from messaging.models import Contact, InboundMessage, Message, MessageEvent, MessageKind
from messaging.states import NOT_SUBMITTED, EventType, Fact, MessageState, precedence
from messaging.sweeps import RULES, Rule
from tenants.models import Tenant
from whatsapp import SubmitResult, get_provider


def message_list(
    *,
    tenant: Tenant,
    state: str | None = None,
    recipient: str | None = None,
    template: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    stalled: bool | None = None,
) -> QuerySet[Message]:
    qs = Message.objects.filter(tenant=tenant)
    if state:
        qs = qs.filter(state__in=state.split(","))
    if recipient:
        qs = qs.filter(recipient=recipient)
    if template:
        qs = qs.filter(template_name=template)
    if created_after:
        qs = qs.filter(created_at__gte=created_after)
    if created_before:
        qs = qs.filter(created_at__lt=created_before)
    if stalled is not None:
        qs = qs.filter(stalled=stalled)
    return qs


def message_get(*, tenant: Tenant, message_id) -> Message:
    message = Message.objects.filter(tenant=tenant, pk=message_id).first()
    if message is None:
        raise NotFound("No such message.", code="message_not_found")
    return message


def _sort_key(event: MessageEvent):
    """In the order Waypost learned the facts (its own clock, under the message's lock). A
    provider's timestamp is whole seconds and from another clock: sorting by it could list a
    status before the submit that caused it. Each event still shows when it happened."""
    return event.recorded_at, event.pk


def message_next_rule(*, message: Message) -> tuple[Rule, datetime] | None:
    """The reconciler's rule (``messaging.sweeps.RULES``) that acts on ``message`` first if
    nothing else happens, and when; None if none watches its state."""
    due = [(when, i) for i, rule in enumerate(RULES) if (when := rule.due_at(message))]
    if not due:
        return None
    when, i = min(due)
    return RULES[i], when


def message_next_step(*, message: Message, now=None) -> str:
    """What Waypost will do next with ``message``, and when — in words, for the admin. The
    reconciler's part is read from its rules, not restated here."""
    now = now or timezone.now()
    tenant, sender = message.tenant, message.sender
    if message.stalled:
        return (
            f"Stalled ({message.get_stalled_reason_display().lower()}) since "
            f"{message.stalled_at:%Y-%m-%d %H:%M} UTC: waiting for an operator; a late status "
            "clears it by itself."
        )
    match message.state:
        case MessageState.QUEUED | MessageState.RETRY_SCHEDULED:
            if not tenant.active:
                lead = "Waits: the tenant is deactivated."
            elif sender.status != "active":
                lead = (
                    f"Waits for its sender to be reactivated ({sender.status}: "
                    f"{sender.status_reason})."
                )
            elif message.next_attempt_at and message.next_attempt_at > now:
                lead = f"Next attempt at {message.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC."
            else:
                lead = "Due: the tenant's next drain sends it (now)."
        case MessageState.SUBMITTING:
            lead = "Being submitted."
        case MessageState.UNKNOWN:
            lead = (
                f"Outcome unknown (the tenant's policy: {tenant.ambiguous_policy}); a status "
                "webhook may still settle it."
            )
        case MessageState.ACCEPTED:
            lead = "Waits for Meta's status."
        case MessageState.HELD:
            lead = "Held by Meta (pacing)."
        case MessageState.SENT:
            lead = "Waits for delivered."
        case MessageState.DELIVERED:
            return "Delivered. read may never come (read receipts can be off): nothing to do."
        case _:
            return "Final: nothing more will happen."
    nxt = message_next_rule(message=message)
    if nxt is None:
        return lead
    rule, when = nxt
    at = (
        f"at {when:%Y-%m-%d %H:%M:%S} UTC"
        if when > now
        else f"at its next pass (due since {when:%Y-%m-%d %H:%M:%S} UTC)"
    )
    return f"{lead} If still {message.state} {at}, the reconciler's rule “{rule.name}” {rule.does}."


def message_payload(*, message: Message) -> dict | None:
    """The provider request of the message's latest send: its last ``payload_built`` event, or
    None before the first send (or once retention pruned the ledger)."""
    built = (
        MessageEvent.objects.filter(message=message, type=EventType.PAYLOAD_BUILT)
        .order_by("-round", "-id")
        .values_list("detail", flat=True)[:1]
    )
    detail = next(iter(built), None)
    return (detail or {}).get("payload")


def message_timeline(*, message: Message) -> list[dict]:
    """The ledger in order, each event with the state it moved the message to (or None)."""
    best = -1
    timeline = []
    for event in sorted(MessageEvent.objects.filter(message=message), key=_sort_key):
        ranked = precedence(Fact(event.type, event.round))
        moved = None
        if ranked and ranked[0] > best:
            best, moved = ranked[0], str(ranked[1])
        timeline.append(
            {
                "type": event.type,
                "source": event.source,
                "state": moved,
                "round": event.round,
                "occurred_at": event.occurred_at,
                "recorded_at": event.recorded_at,
                "detail": event.detail,
            }
        )
    return timeline


def inbound_list(*, tenant: Tenant, wa_id: str | None = None) -> QuerySet[InboundMessage]:
    qs = InboundMessage.objects.filter(tenant=tenant).select_related("contact")
    if wa_id:
        qs = qs.filter(contact__wa_id=wa_id.lstrip("+"))
    return qs


FREE_PRICING_TYPES = ("free_customer_service", "free_entry_point")


def pricing_report(*, tenant: Tenant, since, until) -> list[dict]:
    """What the provider's invoice will count, from the pricing each status carried: priced
    messages by day, pricing category, billable or free, sender and recipient country
    (``since`` ≤ day < ``until``, UTC days). Counts only: no price list."""
    rows = (
        Message.objects.filter(
            tenant=tenant, priced_at__gte=since, priced_at__lt=until, priced_at__isnull=False
        )
        .annotate(day=TruncDate("priced_at", tzinfo=UTC), country=F("recipient_country"))
        .values(
            "day",
            "pricing_category",
            "pricing_type",
            "billable",
            "sender__phone_number_id",
            "country",
        )
        .annotate(messages=Count("id"))
        .order_by("day", "pricing_category", "sender__phone_number_id", "country")
    )
    report: dict[tuple, dict] = {}
    for row in rows:
        billable = (
            row["pricing_type"] not in FREE_PRICING_TYPES
            if row["pricing_type"]
            else bool(row["billable"])
        )
        key = (
            row["day"],
            row["pricing_category"],
            row["sender__phone_number_id"],
            row["country"],
        )
        entry = report.setdefault(
            key,
            {
                "day": row["day"],
                "category": row["pricing_category"],
                "sender": row["sender__phone_number_id"],
                "country": row["country"],
                "billable": 0,
                "free": 0,
            },
        )
        entry["billable" if billable else "free"] += row["messages"]
    return list(report.values())


@dataclass(frozen=True)
class RecordedError:
    """One error a message met, as its ledger recorded it."""

    at: datetime  # when Waypost learned it
    round: int
    code: str  # as a message stores it: the provider's code, else a reason (no_response…)
    title: str  # as the provider worded it
    details: str
    error_class: str
    final: bool  # the error the message holds now (its summary's)


def message_errors(*, message: Message) -> list[RecordedError]:
    """Every error ``message`` met, oldest first: each refused or unanswered submit (from the
    ledger's ``submit_responded``, read again by the sender's provider) and the error the
    message holds now (``final``) — a failed status, the last refusal, an expiry. A retried
    message keeps only its latest error in its own fields; the earlier ones are here."""
    provider = get_provider(message.sender.provider)
    errors: list[RecordedError] = []
    last_failed_status = None
    for event in sorted(MessageEvent.objects.filter(message=message), key=_sort_key):
        if event.type == EventType.STATUS_FAILED:
            last_failed_status = event
        if event.type != EventType.SUBMIT_RESPONDED or not event.detail:
            continue
        try:
            answer = provider.answer(SubmitResult.from_detail(event.detail))
        except (KeyError, TypeError, ValueError):  # not a submit result this provider reads
            continue
        if answer.accepted:
            continue
        kind = answer.classification.error_class if answer.classification else ""
        errors.append(
            RecordedError(
                event.recorded_at,
                event.round,
                answer.code,
                answer.error_title,
                answer.error_details,
                str(kind),
                final=False,
            )
        )
    if not (message.error_code or message.error_title):
        return errors
    answered_last = (
        errors
        and errors[-1].code == message.error_code
        and (last_failed_status is None or last_failed_status.recorded_at < errors[-1].at)
    )
    if answered_last:  # the last refusal is the message's error: listed once, as final
        at, round_ = errors[-1].at, errors.pop().round
    else:
        at = last_failed_status.recorded_at if last_failed_status else message.state_changed_at
        round_ = message.round
    errors.append(
        RecordedError(
            at,
            round_,
            message.error_code,
            message.error_title,
            message.error_details,
            message.error_class,
            final=True,
        )
    )
    return errors


def contact_messages(*, contact: Contact) -> QuerySet[Message]:
    """The messages the tenant sent to ``contact``, by its number or by its BSUID."""
    to = Q(recipient=f"+{contact.wa_id}") if contact.wa_id else Q()
    if contact.user_id:
        to |= Q(recipient_user_id=contact.user_id)
    if not to:
        return Message.objects.none()
    return Message.objects.filter(to, tenant_id=contact.tenant_id)


def message_contact(*, message: Message) -> Contact | None:
    """The contact ``message`` was sent to (by its number or its BSUID), if Waypost knows one."""
    to = Q(wa_id=message.recipient.lstrip("+")) if message.recipient else Q()
    if message.recipient_user_id:
        to |= Q(user_id=message.recipient_user_id)
    if not to:
        return None
    return Contact.objects.filter(to, tenant_id=message.tenant_id).order_by("pk").first()


# --- the messaging limit: unique users reached per business portfolio ----------------------------

#: Meta's messaging limit counts unique users reached in a moving window of this length.
REACH_WINDOW = timedelta(hours=24)
#: A template message in one of these states may have reached its user: it was submitted (or
#: is being), and Meta did not refuse it before accepting it.
REACH_STATES = (
    MessageState.SUBMITTING,
    MessageState.UNKNOWN,
    MessageState.ACCEPTED,
    MessageState.HELD,
    MessageState.SENT,
    MessageState.DELIVERED,
    MessageState.READ,
)


def _reaching(*, tenant: Tenant, business_id: str, now: datetime) -> QuerySet[Message]:
    """The portfolio's template messages that count towards its messaging limit at ``now``
    (see :func:`portfolio_reach`)."""
    since = now - REACH_WINDOW
    # The user's customer-service window was open the whole time the message could have
    # gone: they wrote before it was created, and within 24 hours of its last state change.
    # Found by number and by BSUID in two anti-joins (each an equality on a unique index of
    # contacts; one join on either would be a nested loop over every contact of the tenant).
    window_open = Contact.objects.filter(
        tenant_id=OuterRef("tenant_id"),
        last_inbound_at__lte=OuterRef("created_at"),
        last_inbound_at__gt=OuterRef("state_changed_at") - REACH_WINDOW,
    )
    by_number = window_open.filter(wa_id=Substr(OuterRef("recipient"), 2)).exclude(wa_id="")
    by_bsuid = window_open.filter(user_id=OuterRef("recipient_user_id")).exclude(user_id="")
    return (
        Message.objects.filter(
            tenant=tenant,
            sender__business_id=business_id,
            kind=MessageKind.TEMPLATE,
            attempts__gt=0,
            state_changed_at__gt=since,
        )
        .filter(
            Q(state__in=REACH_STATES)
            | Q(state=MessageState.FAILED, provider_message_id__isnull=False)
        )
        .exclude(pricing_type__in=FREE_PRICING_TYPES)  # Meta priced it inside a window
        .exclude(Exists(by_number))
        .exclude(Exists(by_bsuid))
    )


def _user_key():
    """One user: the phone number, else the BSUID (prefixed: never equal to a number)."""
    return Case(
        When(~Q(recipient=""), then=F("recipient")),
        default=Concat(Value("bsuid:"), F("recipient_user_id")),
        output_field=CharField(),
    )


def portfolio_reach(*, tenant: Tenant, business_id: str, now: datetime | None = None) -> int:
    """How many unique users the portfolio's senders reached with template messages outside a
    customer-service window in the moving 24 hours before ``now`` — what Meta's messaging
    limit counts (``tenants.selectors.portfolio_limit``). One query.

    Conservative: it counts more than Meta may, never less. A message counts when it was
    submitted (``attempts`` > 0) and not refused before acceptance — submitting, unknown,
    accepted, held, sent, delivered, read, and failed after Meta accepted it; not queued,
    rejected, cancelled, expired, or failed without ever being accepted — and its last state
    change is inside the window (a later status keeps it counted longer than its send would).
    It does not count when Meta priced it as inside a window (``free_customer_service``,
    ``free_entry_point``) or when the user's window was open the whole time it could have
    gone (the user wrote before it was created, and within 24 hours of its last state change);
    a user who wrote only afterwards, in answer, still counts. A user is their phone number,
    else their BSUID: one reached both ways counts twice."""
    now = now or timezone.now()
    return _reaching(tenant=tenant, business_id=business_id, now=now).aggregate(
        users=Count(_user_key(), distinct=True)
    )["users"]


def portfolio_usage(
    *, tenant: Tenant, business_id: str, now: datetime | None = None
) -> tuple[int, int]:
    """(users the portfolio reached — :func:`portfolio_reach` —, template messages of the
    portfolio waiting to be sent within the next 24 hours) in **one statement**: one snapshot,
    so a message a drain claims while this runs is in exactly one of the two counts (a
    campaign pass counts both against the limit; two queries would miss such a message or
    count it twice). Messages scheduled further out are counted when they come near."""
    now = now or timezone.now()
    reached = (
        _reaching(tenant=tenant, business_id=business_id, now=now)
        .order_by()
        .annotate(one=Value(1))
        .values("one")
        .annotate(users=Count(_user_key(), distinct=True))
        .values("users")
    )
    waiting = (
        Message.objects.filter(
            tenant=tenant,
            sender__business_id=business_id,
            kind=MessageKind.TEMPLATE,
            state__in=NOT_SUBMITTED,
        )
        .exclude(next_attempt_at__gt=now + REACH_WINDOW)
        .order_by()
        .annotate(one=Value(1))
        .values("one")
        .annotate(messages=Count("pk"))
        .values("messages")
    )
    return (
        Tenant.objects.filter(pk=tenant.pk)
        .annotate(
            reached=Coalesce(Subquery(reached), 0),
            waiting=Coalesce(Subquery(waiting), 0),
        )
        .values_list("reached", "waiting")
        .get()
    )


def portfolio_reach_oldest(
    *, tenant: Tenant, business_id: str, now: datetime | None = None
) -> datetime | None:
    """When :func:`portfolio_reach` next drops: the moment the user counted longest ago leaves
    the 24-hour window (the latest message that reached them + 24 hours); None when it counts
    nobody. A campaign held at the limit sleeps until then. One query."""
    now = now or timezone.now()
    last = (
        _reaching(tenant=tenant, business_id=business_id, now=now)
        .annotate(user=_user_key())
        .values("user")
        .annotate(last=Max("state_changed_at"))
        .order_by("last")
        .values_list("last", flat=True)[:1]
    )
    latest = next(iter(last), None)
    return latest + REACH_WINDOW if latest is not None else None
