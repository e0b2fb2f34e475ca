"""The reconciler's rules on messages — what did *not* happen — and the sweeps that apply them.

``RULES`` below is the one statement of these rules: each names its condition, its threshold
and where that is set, what it does, and the function that does it. ``operations.reconciler``
runs them in this order on the beat (adding the rules on webhooks and callbacks, which live
above this app); the message page's "what next" (``messaging.selectors.message_next_step``)
reads the same rules; ``operations.reconciler.rules_markdown()`` renders them for the docs and
the admin's operations page shows them. Change a rule here, and every one of those follows.

This module sits above both wings: a sweep uses the way out (``send``: dispatch, a new round)
and the record (``track``: the ledger, stall flags); neither wing imports it. Every sweep is
safe to run twice at once: it locks the messages it changes in the ledger's order and re-checks
its condition under the lock. Every action is a ledger event with source ``reconciler``.

A stall is a flag, never a state change (``messaging.track.stalls``). Order matters where two
rules can flag one message: the authentication TTL comes before "sent, not delivered", because
it says more.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.db import retry_transient
from messaging.models import Message, SubmitBatch
from messaging.send import dispatch
from messaging.send.pipeline import submits_resolve_stuck
from messaging.send.requeue import message_requeue
from messaging.states import (
    NOT_SUBMITTED,
    ErrorClass,
    EventSource,
    EventType,
    MessageState,
    StallReason,
)
from messaging.track.inbound import orphans_expire
from messaging.track.ledger import NewEvent, lock_messages, record
from messaging.track.stalls import stalls_mark
from templates_registry.rules.limits import DEFAULT_TTL_SECONDS, TemplateCategory
from tenants.models import AmbiguousPolicy, Tenant

log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """``900`` → ``"15 min"``: a threshold as people say it."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {'day' if unit == 'days' and n == 1 else unit}"
    return f"{seconds:g} s"


# --- thresholds: how long a rule waits, and where that is set --------------------------------


class Threshold(ABC):
    """When a rule acts, where an operator changes that, and the two ways the code asks:
    *which rows waited that long* (:meth:`passed`, SQL) and *when will this message have*
    (:meth:`deadline`, the message page)."""

    @abstractmethod
    def describe(self, tenant: Tenant | None = None) -> str: ...

    @abstractmethod
    def passed(self, *, now: datetime) -> Q: ...

    @abstractmethod
    def deadline(self, message: Message) -> datetime | None: ...


class Wait(Threshold):
    """A number of seconds since the message's state last changed."""

    since = "state_changed_at"

    @abstractmethod
    def seconds(self, tenant: Tenant | None = None) -> float: ...

    def passed(self, *, now: datetime) -> Q:
        return Q(**{f"{self.since}__lte": now - timedelta(seconds=self.seconds())})

    def deadline(self, message: Message) -> datetime | None:
        start = getattr(message, self.since)
        return start + timedelta(seconds=self.seconds(message.tenant)) if start else None


@dataclass(frozen=True)
class TenantSetting(Wait):
    """A tenant's own field (the admin's tenant page, ``PATCH /api/v1/tenant``)."""

    name: str

    def seconds(self, tenant: Tenant | None = None) -> float:
        return getattr(tenant, self.name) if tenant else Tenant._meta.get_field(self.name).default

    def describe(self, tenant: Tenant | None = None) -> str:
        default = duration(Tenant._meta.get_field(self.name).default)
        if tenant is None:
            return f"the tenant's {self.name} (default {default})"
        return f"the tenant's {self.name}: {duration(self.seconds(tenant))} (default {default})"

    def passed(self, *, now: datetime) -> Q:
        """One condition per distinct value among the tenants (a handful): no Python filter."""
        values = Tenant.objects.values_list(self.name, flat=True).distinct()
        return Q(
            *[
                Q(**{f"tenant__{self.name}": v, f"{self.since}__lte": now - timedelta(seconds=v)})
                for v in values
            ],
            _connector=Q.OR,
        ) or Q(pk__in=[])


@dataclass(frozen=True)
class Setting(Wait):
    """A ``WAYPOST_*`` setting (the environment), the same for every tenant."""

    name: str

    def seconds(self, tenant: Tenant | None = None) -> float:
        return getattr(settings, self.name)

    def describe(self, tenant: Tenant | None = None) -> str:
        return f"setting {self.name} ({duration(self.seconds())})"


@dataclass(frozen=True)
class Fixed(Wait):
    """Not configurable: it is how the provider behaves (``why`` says what and where)."""

    value: float
    why: str

    def seconds(self, tenant: Tenant | None = None) -> float:
        return self.value

    def describe(self, tenant: Tenant | None = None) -> str:
        return f"{duration(self.value)}, fixed: {self.why}"


@dataclass(frozen=True)
class TimeToLive(Threshold):
    """Each message's own deadline, ``expires_at``, set when it is created."""

    def describe(self, tenant: Tenant | None = None) -> str:
        defaults = ", ".join(
            f"{duration(s)} for {c.lower()} templates" for c, s in DEFAULT_TTL_SECONDS.items()
        )
        return f"the message's expires_at: the request's ttl_seconds (default: {defaults})"

    def passed(self, *, now: datetime) -> Q:
        return Q(expires_at__lte=now)

    def deadline(self, message: Message) -> datetime | None:
        return message.expires_at


STALL_ACCEPTED = TenantSetting("stall_accepted_seconds")
STALL_SENT = TenantSetting("stall_sent_seconds")
HELD_TOO_LONG = Fixed(3600, "Meta releases or drops a held message within the hour (p99)")
AUTH_TTL = Fixed(
    DEFAULT_TTL_SECONDS[TemplateCategory.AUTHENTICATION],
    "Meta drops an undelivered authentication template after its time to live (§1.7; "
    "templates_registry.rules.limits.DEFAULT_TTL_SECONDS)",
)
UNKNOWN_GRACE = TenantSetting("ambiguous_grace_seconds")
SUBMIT_STUCK = Setting("WAYPOST_SUBMIT_STUCK_AFTER")
REDRIVE_AFTER = Setting("WAYPOST_REDRIVE_AFTER")
ORPHAN_TTL = Setting("WAYPOST_ORPHAN_TTL")
TIME_TO_LIVE = TimeToLive()


# --- the rule --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One of the reconciler's rules: after ``threshold``, ``apply(now=…)`` does what ``does``
    says and returns a count, or counts by kind, which :meth:`run` files under ``counts`` in
    the pass's result. A rule that only flags stalls names its ``flags`` reason instead of an
    ``apply``: it flags the messages it watches whose wait passed (:func:`stalls_flag`).

    ``watches`` (message states) and ``only`` (exact field values) say which messages the rule
    acts on, so the message page can say what will happen to one of them, and when."""

    name: str
    when: str
    threshold: Threshold
    does: str
    counts: str
    apply: Callable[..., int | Mapping[str, int]] | None = None
    flags: str = ""
    watches: tuple[str, ...] = ()
    only: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if bool(self.apply) == bool(self.flags):
            raise ValueError(f"rule {self.name!r}: give either apply or flags")

    @property
    def function(self) -> str:
        """The dotted name of the function that applies the rule."""
        f = self.apply or stalls_flag
        return f"{f.__module__}.{f.__qualname__}"

    def run(self, *, now: datetime) -> dict[str, int]:
        if self.flags:
            candidates = Q(state__in=self.watches, **self.only) & self.threshold.passed(now=now)
            done = stalls_flag(reason=self.flags, candidates=candidates, now=now)
        else:
            done = self.apply(now=now)
        if isinstance(done, int):
            return {self.counts: done}
        return {f"{self.counts}.{key}": n for key, n in done.items()}

    def due_at(self, message: Message) -> datetime | None:
        """When this rule acts on ``message`` if nothing else happens first; None if it never
        does in the message's current state."""
        if message.state not in self.watches:
            return None
        if any(getattr(message, k) != v for k, v in self.only.items()):
            return None
        return self.threshold.deadline(message)


# --- the sweeps ------------------------------------------------------------------------------


def stalls_flag(*, reason: str, candidates: Q, now=None, limit: int = 1000) -> dict[str, int]:
    """Flag the messages matching ``candidates`` (and not flagged yet) ``stalled`` with
    ``reason``, oldest first, at most ``limit``; returns how many, by reason."""
    ids = (
        Message.objects.filter(candidates, stalled=False)
        .order_by("state_changed_at")
        .values_list("pk", flat=True)[:limit]
    )
    reasons = {pk: reason for pk in ids}
    return dict(stalls_mark(reasons=reasons, still=candidates, now=now)) if reasons else {}


def messages_expire(*, now=None, limit: int = 1000) -> int:
    """Waiting messages whose time to live passed without a drain claiming them (their sender
    blocked, their tenant paused): ``expired``, never sent. (A drain expires what it claims
    too late itself; this is the safety net.) Returns how many."""
    now = now or timezone.now()
    ids = list(
        Message.objects.filter(TIME_TO_LIVE.passed(now=now), state__in=NOT_SUBMITTED)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0

    def expire() -> int:
        with transaction.atomic():
            lock_messages(ids)
            waiting = list(
                Message.objects.filter(
                    TIME_TO_LIVE.passed(now=now), pk__in=ids, state__in=NOT_SUBMITTED
                )
            )
            for message in waiting:
                message.error_code, message.error_class = "expired", ErrorClass.INVALID
                message.error_title = "Not sent: its time to live passed first"
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
                changed=waiting,
                fields=["error_code", "error_class", "error_title"],
            )
        return len(waiting)

    return retry_transient(expire, what="expiring messages")


def messages_redrive(*, now=None, limit: int = 1000) -> dict[str, int]:
    """The sweep: the safety net under ``messaging.send.dispatch``, safe to run twice at once.

    * Nudges every tenant that has due messages. Normally each already has a drain pending or
      running and the nudge is a no-op; after a lost nudge (broker down at commit time, a
      process killed between commit and publish) this is what dispatches them. A tenant with
      a queue of its own has it announced to the workers again first (a lost announcement
      leaves the queue unconsumed, whatever is published to it).
    * Records a ``redriven`` event (source ``reconciler``) on each message that has been due
      for longer than ``WAYPOST_REDRIVE_AFTER``: waiting that long means the normal path did
      not pick it up, and an operator should see it (zero when dispatch works).
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
    waited = REDRIVE_AFTER.seconds()
    stale_before = now - timedelta(seconds=waited)
    stale = list(
        due.filter(
            Q(next_attempt_at__isnull=True, created_at__lte=stale_before)
            | Q(next_attempt_at__lte=stale_before)
        )
        .order_by("created_at")
        .values_list("pk", "round")[:limit]
    )
    if stale:
        log.warning("re-drive: %d message(s) were due for over %ss", len(stale), waited)
        with transaction.atomic():
            record(
                [
                    NewEvent(
                        pk,
                        EventType.REDRIVEN,
                        EventSource.RECONCILER,
                        round=round_,
                        detail={"due_for_over_seconds": waited},
                    )
                    for pk, round_ in stale
                ]
            )
    return {"tenants_nudged": len(tenants), "redriven": len(stale)}


def unknown_resolve(*, now=None, limit: int = 1000) -> dict[str, int]:
    """Apply each tenant's policy to submits whose outcome stayed unknown past its grace
    period: ``hold`` flags them ``stalled`` for an operator; ``resend`` starts a new round.
    Bounded in SQL: at most ``limit`` messages per run, oldest first."""
    now = now or timezone.now()
    counts = {"held": 0, "resent": 0}
    messages = list(
        Message.objects.filter(
            UNKNOWN_GRACE.passed(now=now), state=MessageState.UNKNOWN, stalled=False
        )
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
        still = Q(UNKNOWN_GRACE.passed(now=now), state=MessageState.UNKNOWN)
        counts["held"] = sum(stalls_mark(reasons=held, still=still, now=now).values())
    return counts


def orphans_expire_old(*, now=None) -> int:
    """Parked statuses no message claimed within ``WAYPOST_ORPHAN_TTL``: expired, kept."""
    return orphans_expire(older_than=timedelta(seconds=ORPHAN_TTL.seconds()), now=now)


# --- the table -------------------------------------------------------------------------------

SUBMIT_RECORD_KEPT = Fixed(
    86_400.0,
    "a day, many times the broker's visibility timeout: no submit task of the batch is still "
    "redelivered (and a step sends only messages still submitting in its round)",
)


def submit_batches_prune(*, now=None, limit: int = 10_000) -> int:
    """The record that a batch's submit began (``SubmitBatch``) is deleted once older than
    ``SUBMIT_RECORD_KEPT``; up to ``limit`` per pass."""
    now = now or timezone.now()
    old = SubmitBatch.objects.filter(
        started_at__lt=now - timedelta(seconds=SUBMIT_RECORD_KEPT.seconds())
    ).values_list("pk", flat=True)[:limit]
    return SubmitBatch.objects.filter(pk__in=list(old)).delete()[0]


RULES: tuple[Rule, ...] = (
    Rule(
        name="authentication TTL",
        when="an AUTHENTICATION template sent, not delivered, for longer than",
        threshold=AUTH_TTL,
        does="flags it stalled (auth_ttl_passed): Meta has dropped it",
        counts="stalled",
        flags=StallReason.AUTH_TTL_PASSED,
        watches=(MessageState.SENT,),
        only={"template_category": TemplateCategory.AUTHENTICATION},
    ),
    Rule(
        name="sent, not delivered",
        when="sent, not delivered, for longer than",
        threshold=STALL_SENT,
        does=(
            "flags it stalled (sent_not_delivered), for an operator or the client app (the "
            "message.stalled callback) to decide"
        ),
        counts="stalled",
        flags=StallReason.SENT_NOT_DELIVERED,
        watches=(MessageState.SENT,),
    ),
    Rule(
        name="accepted, no status",
        when="accepted by Meta with no status webhook since, for longer than",
        threshold=STALL_ACCEPTED,
        does="flags it stalled (accepted_no_status)",
        counts="stalled",
        flags=StallReason.ACCEPTED_NO_STATUS,
        watches=(MessageState.ACCEPTED,),
    ),
    Rule(
        name="held too long",
        when="held by Meta (pacing) for longer than",
        threshold=HELD_TOO_LONG,
        does="flags it stalled (held_too_long)",
        counts="stalled",
        flags=StallReason.HELD_TOO_LONG,
        watches=(MessageState.HELD,),
    ),
    Rule(
        name="unknown submit",
        when="a submit's outcome unknown for longer than",
        threshold=UNKNOWN_GRACE,
        does=(
            "applies the tenant's ambiguous_policy: hold flags it stalled (unknown_outcome), "
            "resend starts a new round"
        ),
        counts="unknown",
        apply=unknown_resolve,
        watches=(MessageState.UNKNOWN,),
    ),
    Rule(
        name="dead submit",
        when="submitting with no answer for longer than",
        threshold=SUBMIT_STUCK,
        does=(
            "applies the answer if one was recorded, else makes it unknown (its worker died "
            "mid-request; never resent blindly); a batch whose submit step never began within "
            "WAYPOST_SUBMIT_LOST_AFTER (its chained task was lost) is sent again: none of it left"
        ),
        counts="dispatch.stuck_resolved",
        apply=submits_resolve_stuck,
        watches=(MessageState.SUBMITTING,),
    ),
    Rule(
        name="submit records",
        when="the record that a batch's submit began, older than",
        threshold=SUBMIT_RECORD_KEPT,
        does="deletes it",
        counts="dispatch.submit_records_pruned",
        apply=submit_batches_prune,
    ),
    Rule(
        name="lost dispatch",
        when="due and not picked up by a drain (a lost nudge) for longer than",
        threshold=REDRIVE_AFTER,
        does=(
            "nudges every tenant with due messages (always) and records a redriven event on "
            "each message due that long"
        ),
        counts="dispatch",
        apply=messages_redrive,
    ),
    Rule(
        name="messages expired",
        when="still waiting (its sender blocked, its tenant paused) past",
        threshold=TIME_TO_LIVE,
        does="marks it expired, never sent (a drain also expires what it claims too late)",
        counts="messages.expired",
        apply=messages_expire,
        watches=tuple(sorted(NOT_SUBMITTED)),
    ),
    Rule(
        name="orphan statuses",
        when="a status for an unknown wamid parked for longer than",
        threshold=ORPHAN_TTL,
        does="expires it (kept for inspection)",
        counts="orphans.expired",
        apply=orphans_expire_old,
    ),
)
