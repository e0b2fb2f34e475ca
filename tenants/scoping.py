"""Which tenants a staff user may see in the admin (``StaffScope``), and a mixin that scopes
every admin list, page and action by it. Enforced on the queryset, so a user cannot reach
another tenant's object by its URL either."""

from __future__ import annotations

from django.contrib import admin

from tenants.models import Tenant


def allowed_tenants(user):
    """A queryset of the tenants ``user`` may see (all for superusers and ``all_tenants``)."""
    if user.is_superuser or user.has_perm("tenants.all_tenants"):
        return Tenant.objects.all()
    scope = getattr(user, "staff_scope", None)
    return scope.tenants.all() if scope is not None else Tenant.objects.none()


class TenantScopedAdmin(admin.ModelAdmin):
    """Limit an admin to the user's tenants; ``tenant_path`` is the lookup to the tenant."""

    tenant_path = "tenant"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser or request.user.has_perm("tenants.all_tenants"):
            return queryset
        return queryset.filter(**{f"{self.tenant_path}__in": allowed_tenants(request.user)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Tenant:
            kwargs["queryset"] = allowed_tenants(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
