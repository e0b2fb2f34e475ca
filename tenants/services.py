"""Writes for tenants, senders and API keys. Views, commands and the admin call these."""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
import math
import secrets
from collections import Counter
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.alerts import alert
from core.errors import Conflict, ValidationFailed
from core.lookups import ProcessCache
from tenants.limits import UNLIMITED, limit_label, parse_limit
from tenants.models import (
    ApiKey,
    HealthKind,
    HealthSource,
    MissingCredential,
    PortfolioLimit,
    QualityRating,
    SenderHealthEvent,
    SenderNumber,
    SenderStatus,
    Tenant,
)
from tenants.signals import sending_resumed
from whatsapp import Provider, ProviderError, get_provider
from whatsapp.reports import NumberHealth

log = logging.getLogger(__name__)

KEY_PREFIX = "wp_"
# last_used_at is informational: write it at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    raw: str  # shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, tenant: Tenant, name: str = "default") -> IssuedKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(tenant=tenant, name=name, prefix=prefix, key_hash=_hash(secret))
    return IssuedKey(api_key=api_key, raw=f"{KEY_PREFIX}{prefix}_{secret}")


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


# The API key behind a request, with its tenant: read at most once a second per process
# (core.lookups; cleared in this process when a key or tenant is saved: tenants.apps).
api_keys: ProcessCache[ApiKey | None] = ProcessCache("api keys")
_used_at: dict = {}  # key id -> (last_used_at as read, when this process last wrote it)


def api_key_authenticate(*, raw: str) -> ApiKey | None:
    """Return the active key that ``raw`` is, or None. Compares hashes in constant time. The
    key and its tenant may be read from this process's cache (``core.lookups``); the caller
    gets copies of its own."""
    if not raw.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = raw[len(KEY_PREFIX) :].partition("_")
    if not sep or not prefix or not secret:
        return None
    cached = api_keys.get(prefix, lambda: _active_key(prefix))
    if cached is None or not hmac.compare_digest(cached.key_hash, _hash(secret)):
        return None
    # The request's own copies: a view may change its tenant (settings) without the change
    # reaching other requests through the process's cache before it is saved.
    api_key = copy.copy(cached)
    api_key.tenant = copy.copy(cached.tenant)
    now = timezone.now()
    # What this process wrote counts while it reads the same (cached) row it wrote after.
    seen, written = _used_at.get(api_key.pk, (None, None))
    used = written if written and seen == api_key.last_used_at else api_key.last_used_at
    if used is None or used < now - LAST_USED_RESOLUTION:
        # At most one write per key per resolution and process, and no query otherwise.
        _used_at[api_key.pk] = (api_key.last_used_at, now)
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
    return api_key


def api_keys_forget(**kwargs) -> None:
    """A key or tenant changed: this process reads every key again (``post_save`` receiver)."""
    api_keys.forget()


def _active_key(prefix: str) -> ApiKey | None:
    found = ApiKey.objects.active().select_related("tenant").filter(prefix=prefix)[:1]
    return next(iter(found), None)  # the prefix is unique: no ORDER BY to build


@dataclass(frozen=True)
class TenantBundle:
    tenant: Tenant
    sender: SenderNumber
    key: IssuedKey


@transaction.atomic
def tenant_create(
    *,
    slug: str,
    name: str,
    provider: str = Provider.SANDBOX,
    phone_number_id: str,
    waba_id: str,
    display_phone_number: str = "",
    messages_per_second: int = 80,
    credentials_env: str = "",
) -> TenantBundle:
    """Create a tenant with one sender number and one API key, all or nothing.

    The sender is validated as in the admin (``SenderNumber.clean``): Meta's ids are digits,
    ``credentials_env`` is one of the names reserved for this tenant
    (``credential_env_prefix``), and the WABA is no other tenant's (a new tenant shares none).
    """
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict(f"A tenant with slug {slug!r} already exists.", code="tenant_exists")
    if SenderNumber.objects.filter(phone_number_id=phone_number_id).exists():
        raise Conflict(
            f"Phone number id {phone_number_id!r} already belongs to a sender.",
            code="sender_exists",
        )
    if SenderNumber.objects.filter(waba_id=waba_id).exists():
        raise Conflict(
            f"WABA id {waba_id!r} already belongs to another tenant's senders.",
            code="waba_taken",
        )
    tenant = Tenant(slug=slug, name=name)
    tenant.full_clean()
    sender = SenderNumber(
        tenant=tenant,
        provider=provider,
        phone_number_id=phone_number_id,
        waba_id=waba_id,
        display_phone_number=display_phone_number,
        messages_per_second=messages_per_second,
        credentials_env=credentials_env,
    )
    try:
        tenant.save()
        sender.full_clean()
        sender.save()
    except IntegrityError as exc:  # a concurrent create with the same slug or number
        raise Conflict("The tenant or sender was created concurrently.", code="conflict") from exc
    return TenantBundle(tenant=tenant, sender=sender, key=api_key_create(tenant=tenant))


def sender_block(*, sender: SenderNumber, reason: str, by: str) -> bool:
    """Stop an active sender (a provider alert: expired token, policy block, payment). Its
    messages stay queued until it is reactivated. Records why, when and by whom; False when
    it was not active (already blocked or disabled)."""
    changed = SenderNumber.objects.filter(pk=sender.pk, status=SenderStatus.ACTIVE).update(
        status=SenderStatus.BLOCKED,
        status_reason=reason[:255],
        status_changed_at=timezone.now(),
        status_changed_by=by[:150],
    )
    if changed:
        slug = Tenant.objects.filter(pk=sender.tenant_id).values_list("slug", flat=True).first()
        transaction.on_commit(
            lambda: alert(
                "sender blocked: sending stopped",
                tenant=slug or "",
                level="error",
                sender=sender.phone_number_id,
                reason=reason,
            )
        )
    return bool(changed)


def sender_set_status(*, sender: SenderNumber, status: str, reason: str, by: str) -> SenderNumber:
    """An operator's change of a sender's status, with the reason. Reactivating a sender
    resumes its queued messages at once (``sending_resumed``)."""
    if status not in SenderStatus.values:
        raise ValidationFailed(f"Unknown sender status {status!r}.", code="sender_status_invalid")
    was_active = sender.status == SenderStatus.ACTIVE
    sender.status = status
    sender.status_reason = reason[:255]
    sender.status_changed_at = timezone.now()
    sender.status_changed_by = by[:150]
    sender.save(update_fields=["status", "status_reason", "status_changed_at", "status_changed_by"])
    if status == SenderStatus.ACTIVE and not was_active:
        transaction.on_commit(lambda: sending_resumed.send(sender=Tenant, tenant=sender.tenant))
    return sender


def sender_throughput_raise(
    *,
    waba_id: str,
    display_phone_number: str,
    messages_per_second: int,
    reason: str,
    sender: SenderNumber | None = None,
) -> int:
    """The provider raised a number's throughput (``THROUGHPUT_UPGRADE``): its senders may
    send that fast from now on — but never faster than the operator's cap
    (``WAYPOST_SENDER_MPS_CAP``), and an operator's higher setting is never lowered. Recorded
    with the reason. Returns how many senders changed.

    ``sender`` is the sender whose own route (360dialog) delivered the event: then only that
    sender changes, whichever number of its WABA the body names — a route speaks for its own
    number only. Without it (the provider's app-wide, signed route) the number is found in
    ``waba_id`` by its display number."""
    target = min(messages_per_second, settings.WAYPOST_SENDER_MPS_CAP)
    candidates = SenderNumber.objects.filter(waba_id=waba_id, messages_per_second__lt=target)
    if sender is not None:
        candidates = candidates.filter(pk=sender.pk)
    digits = "".join(ch for ch in display_phone_number if ch.isdigit())
    note = f"{reason}: {target} messages/second"
    if target < messages_per_second:
        note += f" (the provider allows {messages_per_second}; WAYPOST_SENDER_MPS_CAP)"
    changed = 0
    for number in candidates:
        if (
            sender is None
            and "".join(ch for ch in number.display_phone_number if ch.isdigit()) != digits
        ):
            continue
        _health_event(
            number,
            kind=HealthKind.THROUGHPUT,
            previous=str(number.messages_per_second),
            value=str(target),
            source=HealthSource.WEBHOOK,
            detail={"event": reason, "provider_allows": messages_per_second},
        )
        number.messages_per_second = target
        number.status_reason = note[:255]
        number.status_changed_at = timezone.now()
        number.status_changed_by = "provider"
        number.save(
            update_fields=[
                "messages_per_second",
                "status_reason",
                "status_changed_at",
                "status_changed_by",
            ]
        )
        changed += 1
    return changed


def tenant_set_active(*, tenant: Tenant, active: bool) -> Tenant:
    """Switch a tenant's sending on or off; switching it on resumes its queued messages."""
    was_active = tenant.active
    tenant.active = active
    tenant.save(update_fields=["active"])
    if active and not was_active:
        transaction.on_commit(lambda: sending_resumed.send(sender=Tenant, tenant=tenant))
    return tenant


# --- health: the messaging limit, quality, alerts, the spam rate limit ---------------------------
#
# Each fact is learned from whichever source tells it first — a webhook, the periodic poll, the
# send pipeline, an operator — and a change is recorded as a SenderHealthEvent (what changed,
# when, from which source). A fact older than the one held is ignored: a replayed or late
# webhook never takes a limit or a rating back to what it was.


def _health_event(
    sender: SenderNumber | None,
    *,
    kind: str,
    value: str,
    source: str,
    previous: str = "",
    tenant: Tenant | None = None,
    business_id: str | None = None,
    detail: dict | None = None,
    at: datetime | None = None,
) -> SenderHealthEvent:
    return SenderHealthEvent.objects.create(
        tenant_id=tenant.pk if tenant is not None else sender.tenant_id,
        sender=sender,
        business_id=business_id if business_id is not None else sender.business_id,
        kind=kind,
        previous=previous[:100],
        value=value[:100],
        source=source,
        detail=detail or {},
        occurred_at=at or timezone.now(),
    )


def portfolio_limit_learn(
    *,
    tenant: Tenant,
    business_id: str,
    value,
    source: str,
    sender: SenderNumber | None = None,
    at: datetime | None = None,
) -> bool:
    """What the provider (or an operator) says the portfolio's messaging limit is: ``value``
    in either of Meta's forms (``TIER_2K``, ``2000``, ``-1``: ``tenants.limits.parse_limit``),
    true at ``at`` (now when not said). Stored on the portfolio's ``PortfolioLimit``; a change
    is recorded as a ``limit`` event (through ``sender`` when one told it), and a lowered limit
    alerts the tenant's operators. True when the limit changed.

    What is not learned: a fact older than the one held (a replayed webhook), and an unknown
    value (``TIER_NOT_SET``, a shape not understood) over a known limit — "nothing known"
    from one source does not erase what another said."""
    limit = parse_limit(value)
    tier = "" if value is None else str(value).strip()[:32]
    at = at or timezone.now()
    with transaction.atomic():
        row, created = PortfolioLimit.objects.select_for_update().get_or_create(
            tenant=tenant,
            business_id=business_id,
            defaults={"limit": limit, "tier": tier, "source": source, "learned_at": at},
        )
        if created:
            previous = None
        elif row.learned_at > at:
            log.info(
                "portfolio %r limit %r from %s is older than the one held",
                business_id,
                value,
                source,
            )
            return False
        elif limit is None and row.limit is not None:
            log.warning(
                "portfolio %r: %s said the limit is unknown (%r); keeping %s",
                business_id,
                source,
                value,
                limit_label(row.limit),
            )
            return False
        else:
            previous = row.limit
            row.limit, row.tier, row.source, row.learned_at = limit, tier, source, at
            row.save(update_fields=["limit", "tier", "source", "learned_at"])
        if limit is None or (not created and previous == limit):
            return False
        _health_event(
            sender,
            tenant=tenant,
            business_id=business_id,
            kind=HealthKind.LIMIT,
            previous="" if created else limit_label(previous),
            value=limit_label(limit),
            source=source,
            detail={"said": tier, "limit": limit},
            at=at,
        )
    if previous is not None and _lowered(previous, limit):
        transaction.on_commit(
            lambda: alert(
                "business portfolio messaging limit lowered",
                tenant=tenant.slug,
                business_id=business_id,
                previous=limit_label(previous),
                limit=limit_label(limit),
                source=source,
            )
        )
    return True


def _lowered(previous: int, limit: int) -> bool:
    if previous == UNLIMITED:
        return limit != UNLIMITED
    return limit != UNLIMITED and limit < previous


_QUALITY_WORDS = {"HIGH": "GREEN", "MEDIUM": "YELLOW", "LOW": "RED", "NA": "UNKNOWN"}
_QUALITY_RANK = {QualityRating.GREEN: 3, QualityRating.YELLOW: 2, QualityRating.RED: 1}


def sender_quality_learn(
    *,
    sender: SenderNumber,
    quality: str,
    source: str,
    at: datetime | None = None,
    detail: dict | None = None,
) -> bool:
    """The number's quality rating as the provider reports it (GREEN, YELLOW, RED, UNKNOWN;
    HIGH, MEDIUM, LOW read as those), true at ``at``. A change is stored on the sender and
    recorded as a ``quality`` event; a drop (to YELLOW or RED) alerts the tenant's operators —
    Meta's quality decides automatic scaling of the limit and the 1,000 mps upgrade. A value
    not understood, or older than the rating held, is not learned. True when it changed."""
    word = str(quality or "").strip().upper()
    rating = _QUALITY_WORDS.get(word, word)
    if rating not in QualityRating.values:
        if rating:
            log.warning(
                "sender %s: quality rating not understood: %r", sender.phone_number_id, quality
            )
        return False
    at = at or timezone.now()
    with transaction.atomic():
        current = (
            SenderNumber.objects.select_for_update()
            .filter(pk=sender.pk)
            .values_list("quality_rating", flat=True)
            .first()
        )
        if current is None or current == rating:
            return False
        newer = SenderHealthEvent.objects.filter(
            sender=sender, kind=HealthKind.QUALITY, occurred_at__gt=at
        ).exists()
        if newer:
            return False
        SenderNumber.objects.filter(pk=sender.pk).update(quality_rating=rating)
        sender.quality_rating = rating
        _health_event(
            sender,
            kind=HealthKind.QUALITY,
            previous=current,
            value=rating,
            source=source,
            detail=detail,
            at=at,
        )
    # Worse than it was, or first told and not GREEN.
    worse = rating in (QualityRating.YELLOW, QualityRating.RED) and (
        _QUALITY_RANK[rating] < _QUALITY_RANK.get(current, 4)
    )
    if worse:
        slug = Tenant.objects.filter(pk=sender.tenant_id).values_list("slug", flat=True).first()
        verb = "dropped to" if current in _QUALITY_RANK else "is"
        transaction.on_commit(
            lambda: alert(
                f"sender quality rating {verb} {rating}",
                tenant=slug or "",
                level="error" if rating == QualityRating.RED else "warning",
                sender=sender.phone_number_id,
                previous=current or "(none)",
                source=source,
            )
        )
    return True


# Meta's alert types about the messaging limit (account_alerts), in words for on-call people.
ALERT_TITLES = {
    "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED": "Meta deferred its decision on raising the "
    "business portfolio's messaging limit",
    "INCREASED_CAPABILITIES_ELIGIBILITY_FAILED": "Meta refused to raise the business "
    "portfolio's messaging limit",
    "INCREASED_CAPABILITIES_ELIGIBILITY_NEED_MORE_INFO": "Meta needs more information before "
    "raising the business portfolio's messaging limit",
}


def sender_alert_record(
    *,
    tenant: Tenant,
    alert_type: str,
    severity: str = "",
    status: str = "",
    description: str = "",
    entity_type: str = "",
    entity_id: str = "",
    sender: SenderNumber | None = None,
    business_id: str = "",
    source: str = HealthSource.WEBHOOK,
    at: datetime | None = None,
) -> SenderHealthEvent | None:
    """An alert the provider raised about the business (``account_alerts``): recorded as an
    ``alert`` event (on ``sender`` when it names a number, else on the portfolio
    ``business_id``), and sent to the tenant's operators unless its status is ``NONE`` (Meta
    clearing it). The same alert told twice (a replayed webhook) is recorded once. Returns the
    event, or None when it was already recorded."""
    at = at or timezone.now()
    alert_type = alert_type.strip().upper()
    with transaction.atomic():
        already = SenderHealthEvent.objects.filter(
            tenant=tenant,
            sender=sender,
            business_id=business_id,
            kind=HealthKind.ALERT,
            value=alert_type[:100],
            occurred_at=at,
            detail__status=status,
        ).exists()
        if already:
            return None
        event = _health_event(
            sender,
            tenant=tenant,
            business_id=business_id,
            kind=HealthKind.ALERT,
            value=alert_type,
            source=source,
            detail={
                "severity": severity,
                "status": status,
                "description": description,
                "entity_type": entity_type,
                "entity_id": entity_id,
            },
            at=at,
        )
    if status != "NONE":
        title = ALERT_TITLES.get(alert_type, f"provider account alert: {alert_type}")
        transaction.on_commit(
            lambda: alert(
                title,
                tenant=tenant.slug,
                level="error" if severity == "CRITICAL" else "warning",
                alert_type=alert_type,
                description=description,
                entity=f"{entity_type} {entity_id}".strip(),
                business_id=business_id,
            )
        )
    return event


SPAM_RATE_LIMIT_CODE = "131048"


def sender_spam_limited(*, sender: SenderNumber, detail: dict) -> SenderHealthEvent:
    """Meta refused ``sender``'s messages for its spam rate limit (131048: earlier messages
    were blocked or reported; sending more makes it worse). Recorded as a ``spam_rate_limit``
    event — campaigns read them (``tenants.selectors.sender_spam_limited_since``) and pause
    the sender's marketing campaigns — and the tenant's operators are alerted. The pipeline
    calls it once per sender per pass."""
    event = _health_event(
        sender,
        kind=HealthKind.SPAM_RATE_LIMIT,
        value=SPAM_RATE_LIMIT_CODE,
        source=HealthSource.PIPELINE,
        detail=detail,
    )
    slug = Tenant.objects.filter(pk=sender.tenant_id).values_list("slug", flat=True).first()
    transaction.on_commit(
        lambda: alert(
            "sender hit Meta's spam rate limit (131048): its marketing campaigns pause; look at "
            "its quality and its recipients' reports",
            tenant=slug or "",
            level="error",
            sender=sender.phone_number_id,
            detail=detail,
        )
    )
    return event


# --- the periodic health poll ---------------------------------------------------------------------


def senders_health_poll(*, now: datetime | None = None, limit: int | None = None) -> dict[str, int]:
    """One pass of the health poll (the beat's ``operations.poll_sender_health``): every active
    sender of an active tenant not asked for ``WAYPOST_HEALTH_POLL_SECONDS`` is asked for its
    portfolio's messaging limit and its quality rating (``BaseProvider.number_health``), at
    most ``limit`` of them (default :func:`health_poll_pass_size`: enough for every sender to
    be asked once an interval), longest unasked first, ``HEALTH_POLL_THREADS`` at a time, and
    what it says is learned (source ``poll``).

    Safe to run twice at once: the senders are claimed — ``health_checked_at`` set, under
    ``SKIP LOCKED`` — and committed before any request leaves, so two passes never ask for the
    same sender. A provider error or a missing credential is logged and counted, never fatal:
    the sender is asked again after the interval. Returns the counts by outcome
    (:func:`sender_health_poll`)."""
    now = now or timezone.now()
    due_before = now - timedelta(seconds=settings.WAYPOST_HEALTH_POLL_SECONDS)
    limit = limit if limit is not None else health_poll_pass_size()
    with transaction.atomic():
        claimed = list(
            SenderNumber.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("tenant")
            .filter(status=SenderStatus.ACTIVE, tenant__active=True)
            .filter(Q(health_checked_at__isnull=True) | Q(health_checked_at__lte=due_before))
            .order_by(F("health_checked_at").asc(nulls_first=True), "pk")[:limit]
        )
        SenderNumber.objects.filter(pk__in=[s.pk for s in claimed]).update(health_checked_at=now)
    if not claimed:
        return {}
    # The requests in threads (no database there), what they answered learned here. A pass
    # asks for at most HEALTH_POLL_DEADLINE seconds (a slow provider must not pile passes up on
    # the worker): the senders not asked by then are given back, due again at the next pass.
    pool = ThreadPoolExecutor(max_workers=min(HEALTH_POLL_THREADS, len(claimed)))
    asked = {pool.submit(_health_ask, sender): sender for sender in claimed}
    futures.wait(asked, timeout=HEALTH_POLL_DEADLINE)
    unasked = [sender for future, sender in asked.items() if future.cancel()]
    pool.shutdown(wait=True)  # those already asking finish (the provider's timeout bounds them)
    if unasked:  # still holding the time they were last asked (the claim's UPDATE left them)
        SenderNumber.objects.bulk_update(unasked, ["health_checked_at"])
    counts = Counter(
        _health_learn(sender, future.result())
        for future, sender in asked.items()
        if not future.cancelled()
    )
    if unasked:
        counts["deferred"] = len(unasked)
    return dict(sorted(counts.items()))


HEALTH_POLL_THREADS = 8
HEALTH_POLL_EVERY = 60  # seconds between passes: the beat row's interval (operations 0002)
HEALTH_POLL_MIN_PASS = 100
HEALTH_POLL_DEADLINE = HEALTH_POLL_EVERY - 15  # seconds a pass may spend asking


def health_poll_pass_size() -> int:
    """Senders one pass may ask: the active senders spread over the passes of one interval,
    with a quarter to spare (a pass that found nothing due, a sender added), and never fewer
    than ``HEALTH_POLL_MIN_PASS``. With 10,000 senders and the 15-minute interval: 834 a pass,
    so each is asked every 15 minutes rather than every 100 (a fixed 100 a pass)."""
    active = SenderNumber.objects.filter(status=SenderStatus.ACTIVE, tenant__active=True).count()
    passes = max(1, settings.WAYPOST_HEALTH_POLL_SECONDS // HEALTH_POLL_EVERY)
    return max(HEALTH_POLL_MIN_PASS, math.ceil(active * 1.25 / passes))


def sender_health_poll(*, sender: SenderNumber) -> str:
    """Ask the provider for ``sender``'s health now and learn it. Returns what happened:
    ``changed`` (the limit or the rating changed), ``unchanged``, ``unsupported`` (the provider
    cannot be asked) or ``failed`` (logged)."""
    return _health_learn(sender, _health_ask(sender))


def _health_ask(sender: SenderNumber) -> NumberHealth | str:
    try:
        health = get_provider(sender.provider).number_health(
            credential=sender.credential(), phone_number_id=sender.phone_number_id
        )
    except (MissingCredential, ProviderError) as exc:
        log.warning("health poll of sender %s failed: %s", sender.phone_number_id, exc)
        return "failed"
    return "unsupported" if health is None else health


def _health_learn(sender: SenderNumber, health: NumberHealth | str) -> str:
    if isinstance(health, str):
        return health
    at = timezone.now()
    changed = False
    if health.messaging_limit:
        changed |= portfolio_limit_learn(
            tenant=sender.tenant,
            business_id=sender.business_id,
            value=health.messaging_limit,
            source=HealthSource.POLL,
            sender=sender,
            at=at,
        )
    if health.quality:
        changed |= sender_quality_learn(
            sender=sender, quality=health.quality, source=HealthSource.POLL, at=at
        )
    return "changed" if changed else "unchanged"
