"""Admin for business users: tenants, their sender numbers and API keys.

Secrets never appear here: senders show only the *name* of their credential variable, and an
API key's secret is displayed once, in the confirmation message right after it is created.
"""

from django.contrib import admin
from django.utils.html import format_html

from tenants.models import SenderNumber, SenderStatus, Tenant
from tenants.services import (
    sender_set_status,
    tenant_set_active,
)

STATUS_FIELDS = ("status", "status_reason", "status_changed_at", "status_changed_by")
STATUS_COLOURS = {
    SenderStatus.ACTIVE: "#1e7e34",
    SenderStatus.BLOCKED: "#b02a37",
    SenderStatus.DISABLED: "#6c757d",
}


class SenderNumberInline(admin.TabularInline):
    model = SenderNumber
    extra = 0
    fields = (
        "provider",
        "phone_number_id",
        "waba_id",
        "display_phone_number",
        "credentials_env",
        "messages_per_second",
        *STATUS_FIELDS,
    )
    # A status changes through the senders' actions, which record who and why.
    readonly_fields = STATUS_FIELDS


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "active", "param_policy", "created_at")
    list_filter = ("active", "param_policy")
    search_fields = ("slug", "name")
    inlines = [SenderNumberInline]
    readonly_fields = ("active",)
    actions = ["activate", "deactivate"]

    @admin.action(description="Activate (their queued messages go at once)")
    def activate(self, request, queryset):
        for tenant in queryset:
            tenant_set_active(tenant=tenant, active=True)
        self.message_user(request, f"Activated {queryset.count()} tenant(s).")

    @admin.action(description="Deactivate (stop sending; messages stay queued)")
    def deactivate(self, request, queryset):
        for tenant in queryset:
            tenant_set_active(tenant=tenant, active=False)
        self.message_user(request, f"Deactivated {queryset.count()} tenant(s).")


@admin.register(SenderNumber)
class SenderNumberAdmin(admin.ModelAdmin):
    list_display = (
        "phone_number_id",
        "tenant",
        "status_badge",
        "provider",
        "display_phone_number",
        "messages_per_second",
    )
    list_filter = ("provider", "status")
    search_fields = ("phone_number_id", "waba_id", "display_phone_number", "tenant__slug")
    list_select_related = ("tenant",)
    readonly_fields = STATUS_FIELDS
    actions = ["reactivate", "disable"]

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        colour = STATUS_COLOURS.get(obj.status, "#555")
        since = (
            f" · {obj.status_changed_by}, {obj.status_changed_at:%Y-%m-%d %H:%M}"
            if (obj.status_changed_at)
            else ""
        )
        return format_html(
            '<div style="min-width:240px"><span style="background:{};color:#fff;padding:2px 8px;'
            'border-radius:10px;font-size:11px;font-weight:600;white-space:nowrap">{}</span>'
            '<div style="font-size:11px;color:#666;margin-top:3px">{}{}</div></div>',
            colour,
            obj.get_status_display().split(" (")[0],
            obj.status_reason,
            since,
        )

    @admin.action(description="Reactivate (its queued messages go at once)")
    def reactivate(self, request, queryset):
        self._set_status(request, queryset, SenderStatus.ACTIVE, "reactivated")

    @admin.action(description="Disable (stop sending from it; messages stay queued)")
    def disable(self, request, queryset):
        self._set_status(request, queryset, SenderStatus.DISABLED, "disabled")

    def _set_status(self, request, queryset, status: str, verb: str) -> None:
        for sender in queryset:
            sender_set_status(
                sender=sender,
                status=status,
                reason=f"{verb} in the admin by {request.user}",
                by=str(request.user),
            )
        self.message_user(request, f"{verb.capitalize()} {queryset.count()} sender(s).")
