"""Writes for tenants, senders and API keys. Views, commands and the admin call these."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.alerts import alert
from core.errors import Conflict, ValidationFailed
from tenants.models import ApiKey, SenderNumber, SenderStatus, Tenant
from tenants.signals import sending_resumed
from whatsapp import Provider

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


def api_key_authenticate(*, raw: str) -> ApiKey | None:
    """Return the active key that ``raw`` is, or None. Compares hashes in constant time."""
    if not raw.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = raw[len(KEY_PREFIX) :].partition("_")
    if not sep or not prefix or not secret:
        return None
    found = ApiKey.objects.active().select_related("tenant").filter(prefix=prefix)[:1]
    api_key = next(iter(found), None)  # the prefix is unique: no ORDER BY to build
    if api_key is None or not hmac.compare_digest(api_key.key_hash, _hash(secret)):
        return None
    now = timezone.now()
    stale = api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION
    if stale:  # at most one write per key per resolution, and no query at all otherwise
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
    return api_key


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
