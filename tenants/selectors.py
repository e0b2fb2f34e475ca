"""Reads of tenants and their senders."""

from __future__ import annotations

from tenants.models import SenderNumber, SenderStatus, Tenant


def sender_default(*, tenant: Tenant) -> SenderNumber | None:
    """The tenant's default sender: the oldest active one, else the oldest.

    The one rule for "which number": a template is submitted through it, and a message leaves
    from its template's number (``messaging``) or, with none, from this one."""
    senders = SenderNumber.objects.filter(tenant=tenant).order_by("created_at", "pk")
    return senders.filter(status=SenderStatus.ACTIVE).first() or senders.first()
