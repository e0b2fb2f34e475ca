"""Contacts: one WhatsApp user of a tenant, whichever identifier reached Waypost.

Since 2026 a user is known by a phone number (``wa_id``), a business-scoped user id (BSUID,
``user_id``), or both (docs/meta-api.md §11.1). Rules:

* A contact has at least one of the two; each is unique per tenant.
* :func:`contact_resolve` finds a contact by either identifier and fills in the one it lacked.
  When the two identifiers belong to two contacts — a user first known by number, later by
  BSUID — the two are merged into the older one: its inbound history, its 24-hour window and
  its marketing preference are the user's, whichever identifier a message used.
* The pipeline asks :func:`identities` which identifiers belong together, so that suppression,
  marketing preferences and the pair rate limit apply to the user, not to one identifier.
* Call inside a transaction (webhook processing and the API are).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from messaging.models import Contact, InboundMessage, Suppression


def wa_id_of(recipient: str) -> str:
    """The ``wa_id`` (digits) of an E.164 number."""
    return recipient.lstrip("+")


def contact_resolve(
    *,
    tenant,
    wa_id: str = "",
    user_id: str = "",
    parent_user_id: str = "",
    username: str = "",
    profile_name: str = "",
) -> Contact:
    """The tenant's contact for these identifiers: found, completed, merged or created."""
    wa_id = wa_id_of(wa_id)
    if not wa_id and not user_id:
        raise ValueError("a contact needs a phone number or a BSUID")
    for _ in range(3):
        try:
            with transaction.atomic():
                return _resolve(tenant, wa_id, user_id, parent_user_id, username, profile_name)
        except IntegrityError:  # a concurrent processor created it first: find it again
            continue
    return _resolve(tenant, wa_id, user_id, parent_user_id, username, profile_name)


def _resolve(tenant, wa_id, user_id, parent_user_id, username, profile_name) -> Contact:
    query = Q(wa_id=wa_id) if wa_id else Q()
    if user_id:
        query |= Q(user_id=user_id)
    found = list(Contact.objects.select_for_update().filter(query, tenant=tenant).order_by("pk"))
    if not found:
        return Contact.objects.create(
            tenant=tenant,
            wa_id=wa_id,
            user_id=user_id,
            parent_user_id=parent_user_id,
            username=username,
            profile_name=profile_name,
        )
    keeper, others = found[0], found[1:]
    for other in others:
        _merge(keeper, other)
    changed = {
        "wa_id": keeper.wa_id or wa_id,
        "user_id": keeper.user_id or user_id,
        "parent_user_id": parent_user_id or keeper.parent_user_id,
        "username": username or keeper.username,
        "profile_name": profile_name or keeper.profile_name,
    }
    if any(getattr(keeper, k) != v for k, v in changed.items()):
        for name, value in changed.items():
            setattr(keeper, name, value)
        keeper.save(update_fields=list(changed))
    return keeper


def _merge(keeper: Contact, other: Contact) -> None:
    """``other`` is the same user as ``keeper``: its history and state move to ``keeper``."""
    InboundMessage.objects.filter(contact=other).update(contact=keeper)
    keeper.wa_id = keeper.wa_id or other.wa_id
    keeper.user_id = keeper.user_id or other.user_id
    keeper.parent_user_id = keeper.parent_user_id or other.parent_user_id
    keeper.username = keeper.username or other.username
    keeper.profile_name = keeper.profile_name or other.profile_name
    keeper.last_inbound_at = _latest(keeper.last_inbound_at, other.last_inbound_at)
    if _later(other.marketing_preference_at, keeper.marketing_preference_at):
        keeper.marketing_stopped_at = other.marketing_stopped_at
        keeper.marketing_preference_at = other.marketing_preference_at
    other.delete()  # first: its identifiers are unique
    keeper.save()


def marketing_preference_record(
    *, tenant, wa_id: str = "", user_id: str = "", stop: bool, at: datetime
) -> bool:
    """The user stopped (or resumed) marketing messages at ``at``: recorded on the contact
    unless a later preference is already there. Utility and authentication messages are not
    affected. False when nothing changed."""
    contact = contact_resolve(tenant=tenant, wa_id=wa_id, user_id=user_id)
    known = contact.marketing_preference_at
    # Meta's timestamps have a resolution of one second: of two preferences in the same
    # second (a stop, then a resume), the one that arrived later wins.
    if known is not None and (
        known > at or (known == at and stop == bool(contact.marketing_stopped_at))
    ):
        return False
    contact.marketing_stopped_at = at if stop else None
    contact.marketing_preference_at = at
    contact.save(update_fields=["marketing_stopped_at", "marketing_preference_at"])
    return True


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)


def _later(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and (b is None or a > b)


@dataclass
class Identities:
    """For a set of messages: who each recipient is, by contact."""

    contacts: list[Contact] = field(default_factory=list)
    by_wa_id: dict = field(default_factory=dict)  # (tenant id, wa_id) -> contact
    by_user_id: dict = field(default_factory=dict)  # (tenant id, user_id) -> contact

    def contact(self, tenant_id, recipient: str, user_id: str) -> Contact | None:
        return self.by_wa_id.get((tenant_id, wa_id_of(recipient))) or self.by_user_id.get(
            (tenant_id, user_id)
        )

    def key(self, tenant_id, recipient: str, user_id: str) -> str:
        """One key per user (the pair rate limit): the contact's, else the identifier's."""
        contact = self.contact(tenant_id, recipient, user_id)
        if contact is not None:
            return f"contact:{contact.pk}"
        return recipient or user_id

    def all_of(self, tenant_id, recipient: str, user_id: str) -> tuple[str, str]:
        """(E.164 number, BSUID) of the recipient, each from the message or its contact."""
        contact = self.contact(tenant_id, recipient, user_id)
        if contact is None:
            return recipient, user_id
        return recipient or (f"+{contact.wa_id}" if contact.wa_id else ""), (
            user_id or contact.user_id
        )


def identities(messages) -> Identities:
    """The contacts of ``messages``' recipients, in one query."""
    wa_ids = {wa_id_of(m.recipient) for m in messages if m.recipient}
    user_ids = {m.recipient_user_id for m in messages if m.recipient_user_id}
    found = Identities()
    if not wa_ids and not user_ids:
        return found
    found.contacts = list(
        Contact.objects.filter(
            Q(wa_id__in=wa_ids) | Q(user_id__in=user_ids),
            tenant_id__in={m.tenant_id for m in messages},
        )
    )
    for contact in found.contacts:
        if contact.wa_id:
            found.by_wa_id[(contact.tenant_id, contact.wa_id)] = contact
        if contact.user_id:
            found.by_user_id[(contact.tenant_id, contact.user_id)] = contact
    return found


def suppressed(messages, known: Identities) -> set:
    """Ids of the messages whose recipient — by either identifier — is suppressed."""
    pairs = {(m.pk, m.tenant_id, *known.all_of(m.tenant_id, m.recipient, m.recipient_user_id))
             for m in messages}  # fmt: skip
    numbers = {number for _, _, number, _ in pairs if number}
    user_ids = {user_id for _, _, _, user_id in pairs if user_id}
    rows = Suppression.objects.filter(
        Q(recipient__in=numbers) | Q(user_id__in=user_ids),
        tenant_id__in={tenant for _, tenant, _, _ in pairs},
    ).values_list("tenant_id", "recipient", "user_id")
    by_number = {(t, r) for t, r, _ in rows if r}
    by_user_id = {(t, u) for t, _, u in rows if u}
    return {
        pk
        for pk, tenant, number, user_id in pairs
        if (tenant, number) in by_number or (tenant, user_id) in by_user_id
    }


def window_open(*, tenant, recipient: str = "", user_id: str = "", now=None) -> bool:
    """Has the user — by either identifier — written to this tenant in the last 24 hours?"""
    now = now or timezone.now()
    either = [Q(wa_id=wa_id_of(recipient))] if recipient else []
    either += [Q(user_id=user_id)] if user_id else []
    if not either:
        return False
    return Contact.objects.filter(
        Q(*either, _connector=Q.OR),
        tenant=tenant,
        last_inbound_at__gte=now - timezone.timedelta(hours=24),
    ).exists()
