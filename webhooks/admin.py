"""Admin for on-call staff: stored deliveries (replayable) and rejected calls (for review)."""

from django.contrib import admin

from tenants.scoping import TenantScopedAdmin
from webhooks.models import RejectedWebhook, WebhookDelivery
from webhooks.services import deliveries_replay


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    # A Meta delivery may name several tenants' numbers: staff limited to some tenants see
    # only deliveries from their tenants' own routes (360dialog).
    tenant_path = "sender__tenant"

    list_display = ("id", "provider", "received_at", "status", "events", "processed_at", "error")
    list_filter = ("status", "provider")
    readonly_fields = (
        "provider",
        "sender",
        "received_at",
        "body_text",
        "body_sha256",
        "headers",
        "status",
        "events",
        "processed_at",
        "error",
    )
    exclude = ("body",)
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD")

    @admin.display(description="body")
    def body_text(self, obj):
        return bytes(obj.body).decode("utf-8", "replace")

    @admin.action(description="Replay (re-process; idempotent)")
    def replay(self, request, queryset):
        count = sum(
            deliveries_replay(delivery_id=pk) for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Re-processed {count} deliveries.")


@admin.register(RejectedWebhook)
class RejectedWebhookAdmin(admin.ModelAdmin):
    """Calls that failed authentication: for security review, by staff who see every tenant."""

    list_display = ("received_at", "reason", "remote_addr", "path", "body_size")

    def has_module_permission(self, request):
        return request.user.is_superuser or request.user.has_perm("tenants.all_tenants")

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_view_permission(request, obj)

    list_filter = ("reason",)
    readonly_fields = (
        "received_at",
        "path",
        "reason",
        "remote_addr",
        "headers",
        "body_size",
        "body_prefix",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD")
