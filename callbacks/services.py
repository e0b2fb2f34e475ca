"""Client callbacks in the Standard Webhooks format, delivered from an outbox.

Wire format (https://www.standardwebhooks.com, so a client verifies with an existing library):

* body ``{"type": "message.delivered", "timestamp": "<ISO 8601>", "data": {...}}``;
* ``webhook-id: msg_<event id>`` — the same on every attempt: a client dedupes on it;
* ``webhook-timestamp: <unix seconds of this attempt>``;
* ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with each active
  secret, space-separated — during a rotation both the new and the old secret sign.

Secrets are ``whsec_<base64 of 24 random bytes>``, shown once when made (rotating makes a new one
and keeps the old signing for ``SECRET_OVERLAP``).

Delivery (``callbacks.deliverer`` runs it): per tenant, in order, one tenant at a time per
thread, so a slow or dead endpoint holds only its own tenant. A 2xx delivers. Network errors
(no connection, a name that does not resolve, no complete answer within the attempt's
deadline), 429 and 5xx are retried with exponential backoff (``Retry-After`` honoured) until the
event is ``RETRY_FOR`` old, then dead-lettered; the endpoint as a whole is backed off meanwhile
(the next events wait instead of failing one by one). A 3xx (redirects are not followed) and a
4xx other than 429 are not retried (dead at once): the answer would not change; 410 also
disables the endpoint, with the reason, until the tenant sets it again. Dead events are
replayable (admin, ``manage.py replay_callbacks``). Every attempt is recorded, with the first
500 characters of the answer.

Each attempt is bounded (``callbacks.transport`` states the rules): 10 s in all, from
resolving the name to the end of the body; at most 64 KiB of the body read, never
decompressed past 4 KiB; no redirects; the connection goes to the addresses the check accepted
(one resolution per attempt: no DNS rebinding).

Destinations are checked when set (``check_destination``) and again at each attempt (the name
may resolve elsewhere later): an http(s) URL; https only when ``WAYPOST_CALLBACK_REQUIRE_HTTPS``;
and, unless ``WAYPOST_CALLBACK_ALLOW_PRIVATE``, a port of 80, 443 or 1024-65535 and never a
loopback, link-local (cloud metadata), private or otherwise reserved address.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from callbacks.models import (
    CallbackAttempt,
    CallbackEndpoint,
    CallbackEvent,
    CallbackStatus,
    url_shown,
)
from callbacks.transport import DEADLINE as ATTEMPT_DEADLINE
from callbacks.transport import (
    DeliveryFailed,
    DestinationRefused,
    Target,
    Transport,
    addresses_resolve,
    target_parse,
)
from core import metrics
from core.alerts import alert
from core.coordination import Doorbell
from core.errors import Conflict, ValidationFailed
from tenants.models import Tenant

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "message.delivered",
    "message.read",
    "message.failed",
    "message.rejected",
    "message.expired",
    "message.stalled",
    "inbound.received",
    "template.status_changed",
    "campaign.started",
    "campaign.paused",
    "campaign.completed",
    "campaign.cancelled",
)
RETRY_FOR = timedelta(hours=24)
SECRET_OVERLAP = timedelta(hours=24)
BATCH = 50


# What endpoint_configure writes: every field but the key and the lease (a deliverer's).
CONFIGURED = [
    f.name
    for f in CallbackEndpoint._meta.concrete_fields
    if f.name not in ("id", "tenant", "leased_by", "leased_until")
]


# A claimed event is its deliverer's this long (then anyone's): a deliverer killed mid-request
# leaves it to be delivered again after the lease (same webhook-id: the client dedupes).
def _lease() -> timedelta:
    return timedelta(seconds=settings.WAYPOST_CALLBACK_LEASE)


BACKOFF_BASE, BACKOFF_CAP = 5.0, 3600.0
RESOLVE_TIMEOUT = 2.0  # setting a URL: how long its name may take to resolve


# --- the endpoint -------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def check_destination(url: str) -> None:
    """Refuse a callback URL Waypost must not call (``ValidationFailed``), in this order: the
    URL's form (``callback_url_invalid``: http(s), a host, a port in 1-65535), its port
    (``callback_url_port``: 80, 443 or 1024-65535), https where required
    (``callback_url_insecure``), then what the host resolves to
    (``callback_url_unresolvable``, ``callback_url_private``). Where private destinations are
    allowed, any port goes and the name is not resolved."""
    try:
        target = _destination(url)
    except DestinationRefused as exc:
        raise _bad_url(exc.message, exc.code) from None
    if settings.WAYPOST_CALLBACK_ALLOW_PRIVATE:
        return
    try:
        addresses_resolve(target, allow_private=False, timeout=RESOLVE_TIMEOUT)
    except DestinationRefused as exc:
        raise _bad_url(exc.message, exc.code) from None
    except DeliveryFailed:
        raise _bad_url(
            "The callback URL's host does not resolve.", "callback_url_unresolvable"
        ) from None


def _destination(url: str) -> Target:
    """The URL's form, its port and the https rule: everything but the resolution, which the
    transport does once per attempt (``DestinationRefused``)."""
    target = target_parse(url, any_port=settings.WAYPOST_CALLBACK_ALLOW_PRIVATE)
    if settings.WAYPOST_CALLBACK_REQUIRE_HTTPS and target.scheme != "https":
        raise DestinationRefused("The callback URL must use https.", "callback_url_insecure")
    return target


def _bad_url(message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, details=[{"field": "callback_url", "code": code}])


def endpoint_get(*, tenant: Tenant) -> CallbackEndpoint:
    endpoint, _ = CallbackEndpoint.objects.get_or_create(tenant=tenant)
    return endpoint


_resolving: dict = {}  # tenant id → this process is resolving one of its callback URLs
_resolving_lock = threading.Lock()


def endpoint_validate(
    *, url: str | None, event_types: list[str] | None, tenant: Tenant | None = None
) -> None:
    """Refuse (``ValidationFailed``) a callback URL Waypost would not call — checked first,
    before anything else is looked at — or an unknown event type. The API and the admin both
    go through it, outside any transaction: resolving the URL's name may take up to
    ``RESOLVE_TIMEOUT``, and the name's DNS is the tenant's. One resolution at a time per tenant
    and process (``Conflict`` ``callback_url_busy``), so one tenant's slow names cannot hold
    every web thread."""
    if url:
        key = tenant.pk if tenant is not None else None
        with _resolving_lock:
            busy = key is not None and key in _resolving
            if not busy and key is not None:
                _resolving[key] = True
        if busy:
            raise Conflict(
                "Another change of this tenant's callback URL is being checked; try again.",
                code="callback_url_busy",
            )
        try:
            check_destination(url)
        finally:
            if key is not None:
                with _resolving_lock:
                    _resolving.pop(key, None)
    if event_types is not None:
        unknown = sorted(set(event_types) - set(EVENT_TYPES))
        if unknown:
            raise ValidationFailed(
                f"Unknown event type(s): {', '.join(unknown)}.",
                code="callback_event_unknown",
                details=[
                    {"field": "callback_events", "code": "unknown", "value": v} for v in unknown
                ],
            )


def endpoint_configure(
    *,
    tenant: Tenant,
    url: str | None = None,
    event_types: list[str] | None = None,
    rotate_secret: bool = False,
    validated: bool = False,
) -> tuple[CallbackEndpoint, str | None]:
    """Set the tenant's callback URL and event types; make or rotate its secret. Returns the
    endpoint and the new secret (shown once) when one was made. Setting a URL re-enables an
    endpoint that a 410 disabled. ``validated``: the caller ran ``endpoint_validate`` (before
    opening its transaction)."""
    if not validated:
        endpoint_validate(url=url, event_types=event_types, tenant=tenant)
    endpoint = endpoint_get(tenant=tenant)
    if event_types is not None:
        endpoint.event_types = sorted(set(event_types))
    if url is not None:
        endpoint.url = url
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, "", None
        endpoint.failures, endpoint.retry_at = 0, None
    made = None
    now = timezone.now()
    if rotate_secret or (endpoint.url and not endpoint.secrets):
        made = new_secret()
        kept = [
            {**s, "expires_at": s.get("expires_at") or (now + SECRET_OVERLAP).isoformat()}
            for s in endpoint.secrets
            if not s.get("expires_at") or datetime.fromisoformat(s["expires_at"]) > now
        ]
        endpoint.secrets = [{"secret": made, "created_at": now.isoformat(), "expires_at": None}]
        endpoint.secrets += kept[:1]  # the previous one signs too, for the overlap
    endpoint.save(update_fields=CONFIGURED)  # not the lease: a deliverer may hold it now
    if endpoint.enabled and endpoint.url:
        transaction.on_commit(deliverer_wake)
    return endpoint, made


def active_secrets(endpoint: CallbackEndpoint, now=None) -> list[str]:
    now = now or timezone.now()
    return [
        s["secret"]
        for s in endpoint.secrets
        if not s.get("expires_at") or datetime.fromisoformat(s["expires_at"]) > now
    ]


# --- the outbox --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    type: str
    data: dict
    message_id: object = None
    sequence: int = 0


def callbacks_enqueue(*, tenant_id, items: list[Item]) -> int:
    """Write the events the tenant subscribed to, in the caller's transaction; the deliverer is
    told after the commit. Returns how many were written."""
    if not items:
        return 0
    endpoint = (
        CallbackEndpoint.objects.filter(tenant_id=tenant_id)
        .only("url", "event_types", "enabled")
        .first()
    )
    if endpoint is None or not endpoint.url:
        return 0
    wanted = [i for i in items if i.type in endpoint.event_types]
    if not wanted:
        return 0
    now = timezone.now()
    CallbackEvent.objects.bulk_create(
        [
            CallbackEvent(
                tenant_id=tenant_id,
                type=i.type,
                message_id=i.message_id,
                sequence=i.sequence,
                payload={"type": i.type, "timestamp": now.isoformat(), "data": i.data},
                next_attempt_at=now,
                retry_until=now + RETRY_FOR,
            )
            for i in wanted
        ]
    )
    transaction.on_commit(deliverer_wake)
    return len(wanted)


def callbacks_expire(*, now=None) -> int:
    """Dead-letter pending events past their retry window — those of a disabled endpoint too,
    which the deliverer no longer attempts. Returns how many."""
    now = now or timezone.now()
    return CallbackEvent.objects.filter(status=CallbackStatus.PENDING, retry_until__lt=now).update(
        status=CallbackStatus.DEAD, last_error="not delivered within the retry window"
    )


def callbacks_replay(*, events) -> int:
    """Deliver these events again (dead-lettered ones, or any): a fresh retry window, same
    ``webhook-id`` — a client that already has one drops the copy."""
    now = timezone.now()
    count = CallbackEvent.objects.filter(pk__in=[e.pk for e in events]).update(
        status=CallbackStatus.PENDING, next_attempt_at=now, retry_until=now + RETRY_FOR
    )
    transaction.on_commit(deliverer_wake)
    return count


# --- waking the deliverer ------------------------------------------------------------------------


# No task answers it: the deliverer process waits on it (callbacks.deliverer.Deliverer.wait).
DELIVERER_BELL = Doorbell("callbacks")


def deliverer_wake() -> None:
    """Ring the deliverer's doorbell after a commit that added events: there is work (never
    raises, never blocks for long: the deliverer also polls)."""
    try:
        DELIVERER_BELL.ring()
    except Exception as exc:
        log.debug("could not wake the callback deliverer: %s", exc)


# --- delivery ----------------------------------------------------------------------------------


def tenants_due(now=None) -> list:
    """Tenants with events due now whose endpoint is enabled, not backed off, and not being
    delivered by another deliverer (its lease holds)."""
    now = now or timezone.now()
    busy = Q(tenant__callback_endpoint__retry_at__gt=now) | Q(
        tenant__callback_endpoint__leased_until__gt=now
    )
    return list(
        CallbackEvent.objects.filter(status=CallbackStatus.PENDING, next_attempt_at__lte=now)
        .filter(tenant__callback_endpoint__enabled=True)
        .exclude(busy)
        .values_list("tenant_id", flat=True)
        .distinct()
    )


def deliver_tenant(*, tenant_id, transport: Transport, holder: str = "") -> dict:
    """Deliver the tenant's due events, in order, until one fails or none are left (one
    batch of ``BATCH``). Returns counts.

    Several deliverers share the work by leases (``WAYPOST_CALLBACK_LEASE``): the endpoint's —
    one deliverer (``holder``) delivers a tenant at a time, so its events go out in order —
    and each claimed event's, so one whose deliverer died goes out again once the lease
    ends, never while it holds."""
    now = timezone.now()
    counts = {"delivered": 0, "retry": 0, "dead": 0}
    leased_until = now + _lease()
    with transaction.atomic():
        endpoint = (
            CallbackEndpoint.objects.select_for_update(skip_locked=True)
            .filter(tenant_id=tenant_id)
            .first()
        )
        if endpoint is None or not endpoint.enabled or not endpoint.url:
            return counts
        if endpoint.retry_at and endpoint.retry_at > now:
            return counts
        if endpoint.leased_until and endpoint.leased_until > now:
            return counts  # another deliverer's (or this one's, lost with its thread)
        events = list(
            CallbackEvent.objects.select_for_update(skip_locked=True)
            .filter(tenant_id=tenant_id, status=CallbackStatus.PENDING, next_attempt_at__lte=now)
            .order_by("created_at")[:BATCH]
        )
        if not events:
            return counts
        CallbackEndpoint.objects.filter(pk=endpoint.pk).update(
            leased_by=holder[:100], leased_until=leased_until
        )
        # Leased: a deliverer that dies mid-request leaves them to be retried after the lease.
        CallbackEvent.objects.filter(pk__in=[e.pk for e in events]).update(
            next_attempt_at=leased_until
        )
    try:
        _deliver_leased(endpoint, events, leased_until, transport, counts)
    finally:  # the endpoint is free for any deliverer again (not if the lease was taken over)
        CallbackEndpoint.objects.filter(
            pk=endpoint.pk, leased_by=holder[:100], leased_until=leased_until
        ).update(leased_until=None)
    return counts


def _deliver_leased(endpoint, events, leased_until, transport: Transport, counts: dict) -> None:
    keys = [Webhook(s) for s in active_secrets(endpoint)]
    for index, event in enumerate(events):
        if index and timezone.now() + timedelta(seconds=ATTEMPT_DEADLINE) > leased_until:
            # A slow receiver used up the lease: an attempt now could outlast it, and another
            # deliverer may then send the same event too. Hand the rest back, due at once (the
            # first is always attempted, so a lease shorter than the deadline still progresses).
            rest = [e.pk for e in events[index:]]
            CallbackEvent.objects.filter(pk__in=rest).update(next_attempt_at=timezone.now())
            break
        if timezone.now() > event.retry_until:
            _finish(event, CallbackStatus.DEAD, error="not delivered within the retry window")
            counts["dead"] += 1
            continue
        outcome = _post(endpoint, event, keys, transport)
        counts[outcome] += 1
        metrics.callbacks.labels(outcome=outcome).inc()
        if outcome == "delivered":
            metrics.callback_lag_seconds.observe(
                (timezone.now() - event.created_at).total_seconds()
            )
        if outcome == "retry":  # the endpoint is failing: the rest wait with it
            rest = [e.pk for e in events[index + 1 :]]
            CallbackEvent.objects.filter(pk__in=rest).update(next_attempt_at=endpoint.retry_at)
            break
        if not endpoint.enabled:  # 410: the rest wait for the tenant to set it again
            break


def _post(endpoint, event: CallbackEvent, keys: list[Webhook], transport: Transport) -> str:
    body = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False)
    sent_at = datetime.now(UTC)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Waypost-Callbacks/1",
        "webhook-id": event.webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(k.sign(event.webhook_id, sent_at, body) for k in keys),
    }
    started = time.monotonic()
    status_code, excerpt, error, retry_after, refused = None, "", "", None, False
    try:
        answer = transport.post(
            _destination(endpoint.url),  # again: the rules may have changed since it was set
            body=body.encode(),
            headers=headers,
            allow_private=settings.WAYPOST_CALLBACK_ALLOW_PRIVATE,
        )
        status_code, excerpt = answer.status, answer.excerpt[:500]
        retry_after = _retry_after(answer.headers.get("Retry-After"))
        if 300 <= status_code < 400:
            location = (answer.headers.get("Location") or "")[:300]
            error = f"redirects are not followed (to {location or 'no Location'})"
    except DestinationRefused as exc:
        error, refused = f"destination refused: {exc.message}", True
    except DeliveryFailed as exc:
        error = str(exc)[:500]
    duration = int((time.monotonic() - started) * 1000)
    # What the receiver sent, for people to read; PostgreSQL's text holds no NUL.
    excerpt, error = excerpt.replace("\x00", "\ufffd"), error.replace("\x00", "\ufffd")
    CallbackAttempt.objects.create(
        event=event,
        url=url_shown(endpoint.url),
        status_code=status_code,
        duration_ms=duration,
        response_excerpt=excerpt,
        error=error,
    )
    event.attempts += 1
    event.last_status_code, event.last_error = status_code, error[:500]
    now = timezone.now()
    if status_code is not None and 200 <= status_code < 300:
        _finish(event, CallbackStatus.DELIVERED)
        CallbackEndpoint.objects.filter(pk=endpoint.pk).update(
            failures=0, retry_at=None, last_success_at=now
        )
        return "delivered"
    if refused or (status_code is not None and 300 <= status_code < 500 and status_code != 429):
        _finish(event, CallbackStatus.DEAD)
        if status_code == 410:  # Gone: stop, and say why where the tenant and operators look
            endpoint.enabled = False
            CallbackEndpoint.objects.filter(pk=endpoint.pk).update(
                enabled=False,
                disabled_reason="the endpoint answered 410 Gone",
                disabled_at=now,
            )
            alert(
                "callback endpoint disabled: it answered 410 Gone",
                tenant=endpoint.tenant.slug,
                level="error",
            )
        return "dead"
    # Network error, 429, 5xx: back off, the endpoint and this event.
    failures = endpoint.failures + 1
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(failures - 1, 20))
    if retry_after is not None:
        delay = min(BACKOFF_CAP, max(delay, retry_after))
    endpoint.failures, endpoint.retry_at = failures, now + timedelta(seconds=delay)
    CallbackEndpoint.objects.filter(pk=endpoint.pk).update(
        failures=failures, retry_at=endpoint.retry_at
    )
    if now + timedelta(seconds=delay) > event.retry_until:
        _finish(event, CallbackStatus.DEAD)
        return "dead"
    event.next_attempt_at = endpoint.retry_at
    event.save(update_fields=["attempts", "last_status_code", "last_error", "next_attempt_at"])
    return "retry"


def _finish(event: CallbackEvent, status: str, *, error: str = "") -> None:
    event.status = status
    if error:
        event.last_error = error
    if status == CallbackStatus.DELIVERED:
        event.delivered_at = timezone.now()
    event.save(
        update_fields=["status", "attempts", "last_status_code", "last_error", "delivered_at"]
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
