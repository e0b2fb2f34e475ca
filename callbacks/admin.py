"""Callbacks for on-call staff: each tenant's endpoint and its health, and the outbox —
every event with its attempts, dead letters to replay.

Permissions: the outbox is read-only (Django's view-only pages: *view* is all a page needs,
and a user without it sees nothing); replaying events is its one action and needs
``callbacks.change_callbackevent`` (``allowed_permissions = ("replay",)``).
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.utils.html import format_html

from callbacks.models import CallbackAttempt, CallbackEndpoint, CallbackEvent, CallbackStatus
from callbacks.selectors import Level, endpoint_health, endpoints_health
from callbacks.services import callbacks_replay, endpoint_configure, endpoint_validate, url_shown
from core.errors import ValidationFailed
from tenants.scoping import TenantScopedAdmin, shown_numbers

COLOURS = {
    CallbackStatus.PENDING: "#946c00",
    CallbackStatus.DELIVERED: "#1e7e34",
    CallbackStatus.DEAD: "#b02a37",
}


class CallbackEndpointForm(forms.ModelForm):
    """The same rules as ``PATCH /api/v1/tenant`` (``callbacks.services.endpoint_configure``):
    a URL the destination rules accept — no loopback, private or metadata address, no port
    outside the allowed ones — and known event types. Saved through the service, so a new URL
    re-enables an endpoint a 410 disabled and wakes the deliverer, as through the API."""

    url = forms.URLField(max_length=500, required=False, assume_scheme="https")

    class Meta:
        model = CallbackEndpoint
        fields = ("url", "event_types")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The URL without the user and password it may carry; sent back unchanged, the stored
        # URL (with them) is kept.
        self.initial["url"] = url_shown(self.instance.url)

    def clean_url(self):
        url = self.cleaned_data.get("url") or ""
        if url == url_shown(self.instance.url):
            return self.instance.url
        return url

    def clean(self):
        cleaned = super().clean()
        try:
            endpoint_validate(
                url=cleaned.get("url"),
                event_types=cleaned.get("event_types"),
                tenant=self.instance.tenant,
            )
        except ValidationFailed as exc:
            field = "url" if exc.code.startswith("callback_url") else "event_types"
            raise forms.ValidationError({field: exc.message}, code=exc.code) from None
        return cleaned


HEALTH_COLOURS = {
    Level.OK: "#1e7e34",
    Level.WARN: "#946c00",
    Level.BAD: "#b02a37",
    Level.OFF: "#6c757d",
}


class EndpointChangeList(ChangeList):
    """The list page, with every row's health read for the whole page at once."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        health = endpoints_health(endpoints=self.result_list)
        for endpoint in self.result_list:
            endpoint.health_read = health[endpoint.tenant_id]


@admin.register(CallbackEndpoint)
class CallbackEndpointAdmin(TenantScopedAdmin):
    """An endpoint's *health* is what really happened (``callbacks.selectors``): delivering,
    waiting, failing, disabled, or stuck — events overdue with nothing attempting them."""

    form = CallbackEndpointForm
    list_display = ("tenant", "url_display", "health", "events")
    list_select_related = ("tenant",)
    readonly_fields = (
        "tenant",
        "health",
        "secrets_shown",
        "enabled",
        "disabled_reason",
        "disabled_at",
        "failures",
        "retry_at",
        "last_success_at",
    )
    fields = ("tenant", "url", "event_types", *readonly_fields[1:])

    def has_add_permission(self, request):
        return False  # tenants set their endpoint through the API (secret shown once there)

    def get_changelist(self, request, **kwargs):
        return EndpointChangeList

    def save_model(self, request, obj, form, change):
        # A URL is set only when it changed: setting one re-enables a disabled endpoint.
        endpoint_configure(
            tenant=obj.tenant,
            validated=True,  # by the form
            url=form.cleaned_data.get("url") or "" if "url" in form.changed_data else None,
            event_types=form.cleaned_data.get("event_types") or [],
        )

    @admin.display(description="URL")
    def url_display(self, obj):
        return url_shown(obj.url)

    @admin.display(description="secrets")
    def secrets_shown(self, obj):
        """Only a prefix of each secret, and whether it is current or about to expire."""
        shown = []
        for secret in obj.secrets:
            expires = secret.get("expires_at")
            state = f"until {expires[:16]}" if expires else "current"
            shown.append(f"{secret['secret'][:10]}… ({state})")
        return ", ".join(shown) or "—"

    @admin.display(description="health")
    def health(self, obj):
        read = getattr(obj, "health_read", None) or endpoint_health(endpoint=obj)
        return format_html(
            '<div style="min-width:260px"><span style="background:{};color:#fff;padding:2px 8px;'
            'border-radius:10px;font-size:11px;font-weight:600;white-space:nowrap">{}</span>'
            '<div style="font-size:11px;color:#444;margin-top:3px">{}</div></div>',
            HEALTH_COLOURS[read.level],
            read.state,
            shown_numbers(read.detail),  # it quotes the receiver's answer
        )

    @admin.display(description="events")
    def events(self, obj):
        return format_html(
            '<span style="font-size:11px">{}</span>', ", ".join(obj.event_types) or "—"
        )


class AttemptInline(admin.TabularInline):
    """What the receiver answered, its numbers masked as in the endpoint's health."""

    model = CallbackAttempt
    fields = ("attempted_at", "status_code", "duration_ms", "error_text", "answer")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="error")
    def error_text(self, obj):
        return shown_numbers(obj.error) or "—"

    @admin.display(description="response excerpt")
    def answer(self, obj):
        return shown_numbers(obj.response_excerpt) or "—"


@admin.register(CallbackEvent)
class CallbackEventAdmin(TenantScopedAdmin):
    list_display = (
        "short_id",
        "tenant",
        "type",
        "status_badge",
        "attempts",
        "last_status_code",
        "created_at",
        "delivered_at",
    )
    list_filter = ("status", "type", "tenant")
    search_fields = ("=message_id",)
    list_select_related = ("tenant",)
    readonly_fields = (
        "webhook_id",
        "tenant",
        "type",
        "message_id",
        "sequence",
        "status",
        "attempts",
        "next_attempt_at",
        "retry_until",
        "last_status_code",
        "last_error_text",
        "created_at",
        "delivered_at",
        "body",
    )
    exclude = ("payload", "last_error")  # shown as body and last_error_text, numbers masked
    inlines = [AttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # an event changes only by being replayed

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("callbacks.change_callbackevent")

    @admin.display(description="id")
    def short_id(self, obj):
        return format_html('<code title="{}">{}</code>', obj.webhook_id, obj.webhook_id[:12])

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
            'font-size:11px">{}</span>',
            COLOURS.get(obj.status, "#555"),
            obj.status,
        )

    @admin.display(description="last error")
    def last_error_text(self, obj):
        return shown_numbers(obj.last_error) or "—"

    @admin.display(description="body")
    def body(self, obj):
        body = json.dumps(obj.payload, indent=2, ensure_ascii=False)
        return format_html("<pre>{}</pre>", shown_numbers(body))

    @admin.action(description="Replay (deliver again; same webhook-id)", permissions=("replay",))
    def replay(self, request, queryset):
        count = callbacks_replay(events=list(queryset))
        self.message_user(request, f"{count} callback(s) queued for delivery again.")
