"""Reads of the template registry. Every read is scoped by ``tenant``."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from core.errors import NotFound
from templates_registry.models import MessageTemplate
from tenants.models import Tenant


def template_list(
    *, tenant: Tenant, status: str | None = None, name: str | None = None
) -> QuerySet[MessageTemplate]:
    qs = MessageTemplate.objects.filter(tenant=tenant)
    if status:
        qs = qs.filter(status=status.upper())
    if name:
        qs = qs.filter(name=name)
    return qs


def template_get(*, tenant: Tenant, template_id: uuid.UUID | str) -> MessageTemplate:
    """The tenant's template, or NotFound — also for another tenant's id (never a 403)."""
    template = MessageTemplate.objects.filter(tenant=tenant, pk=template_id).first()
    if template is None:
        raise NotFound("No such template.", code="template_not_found")
    return template
