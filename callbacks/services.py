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
thread, so a slow or dead endpoint holds only its own tenant. A 2xx delivers. Network errors,
429 and 5xx are retried with exponential backoff (``Retry-After`` honoured) until the event is
``RETRY_FOR`` old, then dead-lettered; the endpoint as a whole is backed off meanwhile (the next
events wait instead of failing one by one). Any other 4xx is not retried (dead at once); 410
also disables the endpoint, with the reason, until the tenant sets it again. Dead events are
replayable (admin, ``manage.py replay_callbacks``). Every attempt is recorded.

Destinations are checked when set and again before each request (the name may resolve
elsewhere later): https only when ``WAYPOST_CALLBACK_REQUIRE_HTTPS``, and never a loopback,
link-local (cloud metadata), private or otherwise reserved address unless
``WAYPOST_CALLBACK_ALLOW_PRIVATE``.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from callbacks.models import CallbackAttempt, CallbackEndpoint, CallbackEvent, CallbackStatus
from core import metrics
from core.alerts import alert
from core.errors import ValidationFailed
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
)
RETRY_FOR = timedelta(hours=24)
SECRET_OVERLAP = timedelta(hours=24)
BATCH = 50


# A claimed event is its deliverer's this long (then anyone's): a deliverer killed mid-request
# leaves it to be delivered again after the lease (same webhook-id: the client dedupes).
def _lease() -> timedelta:
    return timedelta(seconds=settings.WAYPOST_CALLBACK_LEASE)


BACKOFF_BASE, BACKOFF_CAP = 5.0, 3600.0
TIMEOUT = (3.0, 5.0)


# --- the endpoint -------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def check_destination(url: str) -> None:
    """Refuse a callback URL Waypost must not call (``ValidationFailed``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad_url("The callback URL must be an http(s) URL.", "callback_url_invalid")
    if settings.WAYPOST_CALLBACK_REQUIRE_HTTPS and parts.scheme != "https":
        raise _bad_url("The callback URL must use https.", "callback_url_insecure")
    if settings.WAYPOST_CALLBACK_ALLOW_PRIVATE:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise _bad_url(
            "The callback URL's host does not resolve.", "callback_url_unresolvable"
        ) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not _public(address):
            raise _bad_url(
                f"The callback URL resolves to {address}, a loopback, link-local, private or "
                "reserved address.",
                "callback_url_private",
            )


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global unicast, and so is any IPv4 address it carries (IPv4-mapped, NAT64, 6to4,
    Teredo): ``64:ff9b::7f00:1`` counts as global to ``ipaddress`` but names 127.0.0.1."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour]
        if address.teredo:
            embedded.append(address.teredo[1])
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(_public(v4) for v4 in embedded if v4 is not None)
    return True


def _bad_url(message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, details=[{"field": "callback_url", "code": code}])


def endpoint_get(*, tenant: Tenant) -> CallbackEndpoint:
    endpoint, _ = CallbackEndpoint.objects.get_or_create(tenant=tenant)
    return endpoint


def endpoint_configure(
    *,
    tenant: Tenant,
    url: str | None = None,
    event_types: list[str] | None = None,
    rotate_secret: bool = False,
) -> tuple[CallbackEndpoint, str | None]:
    """Set the tenant's callback URL and event types; make or rotate its secret. Returns the
    endpoint and the new secret (shown once) when one was made. Setting a URL re-enables an
    endpoint that a 410 disabled."""
    endpoint = endpoint_get(tenant=tenant)
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
        endpoint.event_types = sorted(set(event_types))
    if url is not None:
        if url:
            check_destination(url)
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
    endpoint.save()
    if endpoint.enabled and endpoint.url:
        transaction.on_commit(notify)
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
    transaction.on_commit(notify)
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
    transaction.on_commit(notify)
    return count


# --- waking the deliverer ------------------------------------------------------------------------

_NUDGE_KEY = "waypost:callbacks:nudge"


def notify() -> None:
    """Tell the deliverer there is work (never raises: it also polls)."""
    try:
        from callbacks.deliverer import wake_up

        wake_up()
    except Exception as exc:
        log.debug("could not wake the callback deliverer: %s", exc)


# --- delivery ----------------------------------------------------------------------------------


def tenants_due(now=None) -> list:
    """Tenants with events due now whose endpoint is enabled and not backed off."""
    now = now or timezone.now()
    backed_off = Q(tenant__callback_endpoint__retry_at__gt=now)
    return list(
        CallbackEvent.objects.filter(status=CallbackStatus.PENDING, next_attempt_at__lte=now)
        .filter(tenant__callback_endpoint__enabled=True)
        .exclude(backed_off)
        .values_list("tenant_id", flat=True)
        .distinct()
    )


def deliver_tenant(*, tenant_id, session: requests.Session) -> dict:
    """Deliver the tenant's due events, in order, until one fails or none are left (one
    batch of ``BATCH``). Returns counts."""
    now = timezone.now()
    counts = {"delivered": 0, "retry": 0, "dead": 0}
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
        events = list(
            CallbackEvent.objects.select_for_update(skip_locked=True)
            .filter(tenant_id=tenant_id, status=CallbackStatus.PENDING, next_attempt_at__lte=now)
            .order_by("created_at")[:BATCH]
        )
        # Leased: a deliverer that dies mid-request leaves them to be retried after the lease.
        CallbackEvent.objects.filter(pk__in=[e.pk for e in events]).update(
            next_attempt_at=now + _lease()
        )
    keys = [Webhook(s) for s in active_secrets(endpoint)]
    for index, event in enumerate(events):
        if timezone.now() > event.retry_until:
            _finish(event, CallbackStatus.DEAD, error="not delivered within the retry window")
            counts["dead"] += 1
            continue
        outcome = _post(endpoint, event, keys, session)
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
    return counts


def _post(endpoint, event: CallbackEvent, keys: list[Webhook], session) -> str:
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
    status_code, excerpt, error, retry_after = None, "", "", None
    try:
        check_destination(endpoint.url)  # again: a name may resolve elsewhere by now
        response = session.post(
            endpoint.url,
            data=body.encode(),
            headers=headers,
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        status_code, excerpt = response.status_code, response.text[:500]
        retry_after = _retry_after(response.headers.get("Retry-After"))
    except ValidationFailed as exc:
        error = f"destination refused: {exc.message}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    duration = int((time.monotonic() - started) * 1000)
    CallbackAttempt.objects.create(
        event=event,
        url=endpoint.url,
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
    if error.startswith("destination refused") or (
        status_code is not None and 400 <= status_code < 500 and status_code != 429
    ):
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


def next_due_at():
    """When the earliest pending event (of an enabled endpoint) is due, or None."""
    first = (
        CallbackEvent.objects.filter(
            status=CallbackStatus.PENDING, tenant__callback_endpoint__enabled=True
        )
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return first
