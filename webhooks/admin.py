"""Admin for on-call staff: stored deliveries (replayable) and rejected calls (for review).

Permissions: both are read-only records (Django's view-only pages: *view* is all a page
needs, and a user without it sees nothing). Replaying deliveries is the one action and needs
``webhooks.change_webhookdelivery`` (``allowed_permissions = ("replay",)``).

Rejected calls are not any one tenant's — a forged Meta delivery can name every tenant's
numbers — so only superusers and holders of ``tenants.all_tenants`` (with the view
permission) see them, on every page: the index, the list, a call's page and its history.
What is stored of them is redacted when recorded (``webhooks.services.rejected_record``).
"""

from django.contrib import admin

from tenants.scoping import AllTenantsOnly, TenantScopedAdmin, shown_numbers
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
        return False  # a stored delivery is what arrived; it is only ever re-processed

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.display(description="body")
    def body_text(self, obj):
        return shown_numbers(bytes(obj.body).decode("utf-8", "replace"))

    @admin.action(description="Replay (re-process; idempotent)", permissions=("replay",))
    def replay(self, request, queryset):
        count = sum(
            deliveries_replay(delivery_id=pk) for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Re-processed {count} deliveries.")


@admin.register(RejectedWebhook)
class RejectedWebhookAdmin(AllTenantsOnly, admin.ModelAdmin):
    """Calls that failed authentication: for security review, by staff who see every tenant."""

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
        return False
