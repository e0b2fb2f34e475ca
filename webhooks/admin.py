"""Admin for on-call staff: stored deliveries (replayable) and rejected calls (for review).

Permissions: both are read-only records (Django's view-only pages: *view* is all a page
needs, and a user without it sees nothing). Replaying deliveries is the one action and needs
``webhooks.change_webhookdelivery`` (``allowed_permissions = ("replay",)``).

Rejected calls are not any one tenant's — a forged Meta delivery can name every tenant's
numbers — so only superusers and holders of ``tenants.all_tenants`` (with the view
permission) see them, on every page: the index, the list, a call's page and its history.
What is stored of them is redacted when recorded (``webhooks.services.rejected_record``).
"""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from tenants.scoping import AllTenantsOnly, TenantScopedAdmin, allowed_tenants, shown_numbers
from webhooks.models import RejectedWebhook, WebhookDelivery
from webhooks.selectors import (
    deliveries_carrying,
    deliveries_of_tenant,
    delivery_carried,
    delivery_tenants,
)
from webhooks.services import deliveries_replay


def _q(term: str) -> str:
    return urlencode({"q": term})


def to_the_second(when) -> str:
    """A time as the on-call person compares it with logs and the provider's timestamps."""
    return f"{timezone.localtime(when):%Y-%m-%d %H:%M:%S}" if when else "—"


class TenantFilter(admin.SimpleListFilter):
    """The deliveries that concern a tenant (its senders' routes, or its numbers named in the
    body): ``webhooks.selectors.deliveries_of_tenant``."""

    title = "tenant"
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        return [(t.slug, t.slug) for t in allowed_tenants(request.user).order_by("slug")]

    def queryset(self, request, queryset):
        tenant = allowed_tenants(request.user).filter(slug=self.value()).first()
        if self.value() and tenant is None:
            return queryset.none()
        return deliveries_of_tenant(deliveries=queryset, tenant=tenant) if tenant else queryset


class DeliveryChangeList(ChangeList):
    """The list page, with each row's tenants read for the whole page at once."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        tenants = delivery_tenants(deliveries=self.result_list)
        for row in self.result_list:
            row.tenant_slugs = tenants.get(row.pk, [])


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    # A Meta delivery may name several tenants' numbers: staff limited to some tenants see
    # only deliveries from their tenants' own routes (360dialog).
    tenant_path = "sender__tenant"

    list_display = (
        "id",
        "tenants",
        "provider",
        "received",
        "status",
        "events",
        "processed",
        "error_shown",
    )
    list_filter = ("status", "provider", TenantFilter)
    list_select_related = ("sender__tenant",)
    search_fields = ("=id",)  # and the stored bodies: get_search_results
    search_help_text = (
        "A wamid, a phone number id or WABA id (found in the stored bodies), or a delivery id."
    )
    ordering = ("-received_at", "-id")
    fields = (
        "provider",
        "tenants",
        "sender",
        "received",
        "status",
        "events",
        "processed",
        "error_text",
        "carried",
        "body_text",
        "body_sha256",
        "headers",
    )
    readonly_fields = fields
    actions = ["replay"]

    def get_changelist(self, request, **kwargs):
        return DeliveryChangeList

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        found = deliveries_carrying(deliveries=queryset, text=term)
        if term.isdigit() and len(term) < 12:  # a delivery id, or a number naming it
            found = found | queryset.filter(pk=int(term))
        return found, False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # a stored delivery is what arrived; it is only ever re-processed

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.display(description="tenant")
    def tenants(self, obj):
        slugs = getattr(obj, "tenant_slugs", None)
        if slugs is None:  # a delivery's own page
            slugs = delivery_tenants(deliveries=[obj]).get(obj.pk, [])
        return ", ".join(slugs) or "—"

    @admin.display(description="received (UTC)", ordering="received_at")
    def received(self, obj):
        return to_the_second(obj.received_at)

    @admin.display(description="processed (UTC)", ordering="processed_at")
    def processed(self, obj):
        if not obj.processed_at:
            return "—"
        lag = (obj.processed_at - obj.received_at).total_seconds()
        return format_html(
            '{}<br><span style="color:#666;font-size:11px">after {} s</span>',
            to_the_second(obj.processed_at),
            f"{lag:.1f}",
        )

    # A delivery's error quotes what failed (an exception's repr, an item's body values): its
    # numbers are masked like the body's.
    @admin.display(description="error")
    def error_shown(self, obj):
        if not obj.error:
            return ""
        error = shown_numbers(obj.error)
        short = error if len(error) <= 80 else f"{error[:80]}…"
        return format_html('<span title="{}">{}</span>', error, short)

    @admin.display(description="error")
    def error_text(self, obj):
        return shown_numbers(obj.error) if obj.error else "—"

    @admin.display(description="what it carried")
    def carried(self, obj):
        items = delivery_carried(delivery=obj)
        if not items:
            return "—"
        messages = reverse("admin:messaging_message_changelist")
        rows = [
            (
                item.kind,
                format_html(
                    '<a href="{}?{}"><code>{}</code></a>', messages, _q(item.wamid), item.wamid
                )
                if item.wamid
                else "",
                item.what,
                format_html("<code>{}</code>", item.number) if item.number else "",
                shown_numbers(item.error),
            )
            for item in items
        ]
        return format_html(
            "<table><thead><tr><th>item</th><th>wamid</th><th>what</th><th>number / WABA</th>"
            "<th>error</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
            ),
        )

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
