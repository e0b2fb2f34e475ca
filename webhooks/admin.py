"""Admin for on-call staff: stored deliveries (replayable) and rejected calls (for review)."""

from django.contrib import admin

from webhooks.models import RejectedWebhook, WebhookDelivery
from webhooks.services import deliveries_replay


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
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
    list_display = ("received_at", "reason", "remote_addr", "path", "body_size")
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
