"""Reads of the callback outbox: how each tenant's endpoint is really doing.

An endpoint's own fields (``enabled``, ``failures``, ``last_success_at``) say how its last
attempts went, not whether anything is being attempted: with no deliverer running, every event
stays pending and the endpoint still has no failures. So an endpoint's health is read from the
outbox as well — how many events wait, whether any is overdue (due more than ``OVERDUE_AFTER``
ago: the deliverer takes a due event within seconds), how many were dead-lettered — and from
its last attempt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.db.models import Count, Min, Q
from django.utils import timezone

from callbacks.models import CallbackAttempt, CallbackEndpoint, CallbackEvent, CallbackStatus

#: A pending event due longer ago than this is overdue: nothing is delivering it.
OVERDUE_AFTER = timedelta(seconds=60)


class Level(StrEnum):
    OK = "ok"  # delivering, or nothing to deliver
    WARN = "warn"  # waiting, nothing lost yet
    BAD = "bad"  # failing, disabled or stuck: someone must look
    OFF = "off"  # no URL: callbacks are not sent


@dataclass(frozen=True)
class EndpointHealth:
    """What an endpoint is doing, in one word (``state``) and one sentence (``detail``)."""

    level: str
    state: str  # not configured, disabled, failing, stuck, delivering, waiting, idle
    detail: str
    pending: int = 0
    overdue: int = 0
    dead: int = 0
    last_attempt_at: datetime | None = None


def _at(when: datetime | None) -> str:
    return f"{timezone.localtime(when):%Y-%m-%d %H:%M:%S} UTC" if when else "never"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def endpoints_health(*, endpoints: list[CallbackEndpoint], now=None) -> dict[int, EndpointHealth]:
    """Tenant id → its endpoint's health: one query for the outbox's counts, one per
    endpoint for its last attempt."""
    now = now or timezone.now()
    counts = {
        row["tenant_id"]: row
        for row in CallbackEvent.objects.filter(
            tenant_id__in=[e.tenant_id for e in endpoints],
            status__in=[CallbackStatus.PENDING, CallbackStatus.DEAD],
        )
        .values("tenant_id")
        .annotate(
            pending=Count("pk", filter=Q(status=CallbackStatus.PENDING)),
            overdue=Count(
                "pk",
                filter=Q(status=CallbackStatus.PENDING, next_attempt_at__lt=now - OVERDUE_AFTER),
            ),
            oldest_due=Min("next_attempt_at", filter=Q(status=CallbackStatus.PENDING)),
            dead=Count("pk", filter=Q(status=CallbackStatus.DEAD)),
        )
    }
    return {
        e.tenant_id: _health(e, counts.get(e.tenant_id, {}), _last_attempt(e), now)
        for e in endpoints
    }


def endpoint_health(*, endpoint: CallbackEndpoint, now=None) -> EndpointHealth:
    return endpoints_health(endpoints=[endpoint], now=now)[endpoint.tenant_id]


def _last_attempt(endpoint: CallbackEndpoint) -> CallbackAttempt | None:
    return (
        CallbackAttempt.objects.filter(event__tenant_id=endpoint.tenant_id).order_by("-id").first()
    )


def _cut(text: str, limit: int) -> str:
    """``text`` to ``limit`` characters, never ending inside a number: a phone number cut
    short no longer looks like one, and would escape the admin's masking."""
    if len(text) <= limit:
        return text
    return re.sub(r"\+?[\d][\d ().-]*$", "", text[:limit]).rstrip() + "…"


def _outcome(attempt: CallbackAttempt) -> str:
    if attempt.status_code:
        excerpt = _cut(attempt.response_excerpt.strip(), 60)
        said = f" ({excerpt})" if excerpt and not 200 <= attempt.status_code < 300 else ""
        return f"HTTP {attempt.status_code} in {attempt.duration_ms} ms{said}"
    return attempt.error or "no answer"


def _health(endpoint, counts: dict, last: CallbackAttempt | None, now) -> EndpointHealth:
    pending, overdue, dead = (counts.get(k, 0) for k in ("pending", "overdue", "dead"))
    waiting = f"{_plural(pending, 'callback')} waiting"
    dead_note = f"; {dead} dead-lettered (replay them under Callback events)" if dead else ""
    last_at = last.attempted_at if last else None

    def health(level: str, state: str, detail: str) -> EndpointHealth:
        return EndpointHealth(
            level, state, detail + dead_note + ".", pending, overdue, dead, last_at
        )

    if not endpoint.url:
        return health(Level.OFF, "not configured", f"No URL: callbacks are not sent; {waiting}")
    if not endpoint.enabled:
        return health(
            Level.BAD,
            "disabled",
            f"Disabled at {_at(endpoint.disabled_at)}: {endpoint.disabled_reason or 'no reason'}"
            f"; {waiting} — setting a URL again re-enables it",
        )
    if endpoint.failures:
        outcome = f"the last at {_at(last_at)}: {_outcome(last)}" if last else "no attempt kept"
        backed_off = (
            f"backed off until {_at(endpoint.retry_at)}"
            if endpoint.retry_at and endpoint.retry_at > now
            else "retrying now"
        )
        return health(
            Level.BAD,
            "failing",
            f"{_plural(endpoint.failures, 'failed attempt')} in a row, {outcome}; {backed_off}; "
            f"{waiting}",
        )
    if overdue:
        minutes = int((now - counts["oldest_due"]).total_seconds() // 60)
        return health(
            Level.BAD,
            "stuck",
            f"{_plural(overdue, 'callback')} overdue, the oldest due since "
            f"{_at(counts['oldest_due'])} ({minutes} min); last attempt: {_at(last_at)} — is the "
            "callback deliverer running?",
        )
    if last is not None and last.status_code and 200 <= last.status_code < 300:
        return health(
            Level.OK,
            "delivering",
            f"Last delivered at {_at(last_at)} ({_outcome(last)}); {waiting}",
        )
    if pending:
        return health(
            Level.WARN, "waiting", f"{waiting}, none overdue; last attempt: {_at(last_at)}"
        )
    if last is not None:  # answered, but not with 2xx, and no failure counted (a 410 resets)
        return health(Level.WARN, "idle", f"Last attempt at {_at(last_at)}: {_outcome(last)}")
    return health(Level.OK, "idle", "Nothing sent yet: no event so far")
