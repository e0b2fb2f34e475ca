"""Which tenants a staff user may see in the admin (``StaffScope``), and a mixin that scopes
every admin list, page, action, filter and form choice by it.

Scoping is per *function*, not per page: the queryset (lists, pages, actions, history: a user
cannot reach another tenant's object by its URL either), the filter sidebar (Django's related
filter lists every row of the related table, whatever the page's queryset) and the choices of
a form's related fields. ``TenantScopedAdmin`` applies all three by itself, so an admin that
adds ``"tenant"`` or ``"sender"`` to ``list_filter`` needs nothing more.

Phone numbers in what a page shows (a stored body, a callback's payload) go through
``shown_numbers``: masked unless the user holds ``messaging.view_recipient``. Display methods
get no request, so ``TenantScopedAdmin`` keeps the one being answered (per thread).
"""

from __future__ import annotations

import threading

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.db import models

from core.logging import mask_phone
from tenants.models import Tenant

_answering = threading.local()


def can_see_recipients(request=None) -> bool:
    """Whether the user of ``request`` (default: the one being answered) sees full numbers."""
    request = request or getattr(_answering, "request", None)
    return request is not None and request.user.has_perm("messaging.view_recipient")


def shown_numbers(text: str) -> str:
    """``text`` as the user being answered may see it: phone numbers masked unless allowed."""
    return text if can_see_recipients() else mask_phone(text)


def sees_all_tenants(user) -> bool:
    """Superusers and holders of ``tenants.all_tenants`` see every tenant."""
    return user.is_superuser or user.has_perm("tenants.all_tenants")


def allowed_tenants(user):
    """A queryset of the tenants ``user`` may see (all for superusers and ``all_tenants``)."""
    if sees_all_tenants(user):
        return Tenant.objects.all()
    scope = getattr(user, "staff_scope", None)
    if scope is None:
        return Tenant.objects.none()
    # Who may see what is read from the primary, also on a page that reads a replica.
    ids = list(scope.tenants.all().using("default").values_list("pk", flat=True))
    return Tenant.objects.filter(pk__in=ids)


def tenant_lookup(model) -> str | None:
    """The lookup from ``model`` to its tenant (``"pk"`` for ``Tenant`` itself, the name of a
    foreign key to ``Tenant`` otherwise), or None for a model that belongs to no tenant."""
    if model is Tenant:
        return "pk"
    for field in model._meta.get_fields():
        if field.many_to_one and field.related_model is Tenant:
            return field.name
    return None


def scoped(queryset, user):
    """``queryset`` limited to ``user``'s tenants; None when its model has no tenant."""
    lookup = tenant_lookup(queryset.model)
    if lookup is None:
        return None
    if sees_all_tenants(user):
        return queryset
    return queryset.filter(**{f"{lookup}__in": allowed_tenants(user)})


class TenantScopedRelatedFilter(admin.RelatedFieldListFilter):
    """Django's related filter with the choices a user may see: the related rows of the user's
    tenants (``tenant``, ``sender``), or — for a related model that has no tenant — the rows
    the user's own objects point at."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        ordering = self.field_admin_ordering(field, request, model_admin)
        choices = scoped(related._default_manager.all(), request.user)
        if choices is None:
            pointed = model_admin.get_queryset(request).values(f"{self.field_path}__pk")
            choices = related._default_manager.filter(pk__in=pointed)
        lookup = tenant_lookup(related)
        if lookup not in (None, "pk"):
            choices = choices.select_related(lookup)  # str(sender) names its tenant
        if ordering:
            choices = choices.order_by(*ordering)
        target = field.target_field.attname
        return [(getattr(obj, target), str(obj)) for obj in choices]


class TenantScopedValuesFilter(admin.AllValuesFieldListFilter):
    """Django's all-values filter on a field across a relation (``"sender__waba_id"``) reads the
    related table whole; this one reads the values of the user's own objects."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = (
            model_admin.get_queryset(request)
            .exclude(**{f"{field_path}__isnull": True})
            .order_by(field_path)
            .values_list(field_path, flat=True)
            .distinct()
        )


def _scoped_filter(model, item):
    """The scoped filter for one ``list_filter`` entry (unchanged when it needs none)."""
    if isinstance(item, str):
        path = get_fields_from_path(model, item)
        last = path[-1]
        if last.is_relation:
            return (item, TenantScopedRelatedFilter)
        plain = not (last.flatchoices or isinstance(last, models.BooleanField | models.DateField))
        if len(path) > 1 and plain:
            return (item, TenantScopedValuesFilter)
        return item
    if isinstance(item, tuple | list) and item[1] is admin.RelatedFieldListFilter:
        return (item[0], TenantScopedRelatedFilter)
    return item


class TenantScopedAdmin(admin.ModelAdmin):
    """Limit an admin to the user's tenants; ``tenant_path`` is the lookup to the tenant."""

    tenant_path = "tenant"

    def changelist_view(self, request, extra_context=None):
        _answering.request = request
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        _answering.request = request
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if sees_all_tenants(request.user):
            return queryset
        return queryset.filter(**{f"{self.tenant_path}__in": allowed_tenants(request.user)})

    def get_list_filter(self, request):
        return [_scoped_filter(self.model, item) for item in super().get_list_filter(request)]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            choices = scoped(db_field.related_model._default_manager.all(), request.user)
            if choices is not None:
                kwargs["queryset"] = choices
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            choices = scoped(db_field.related_model._default_manager.all(), request.user)
            if choices is not None:
                kwargs["queryset"] = choices
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class AllTenantsOnly:
    """Visible and usable only by staff who see every tenant, on top of model permissions."""

    def has_module_permission(self, request):
        return sees_all_tenants(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return sees_all_tenants(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return sees_all_tenants(request.user) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return sees_all_tenants(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return sees_all_tenants(request.user) and super().has_delete_permission(request, obj)
