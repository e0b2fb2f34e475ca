"""Admin for on-call staff: inspect messages and their ledger; resend or give up on stuck
ones. The ledger is read-only here as in the database: no add, change or delete."""

from django.contrib import admin, messages
from django.utils.html import format_html

from core.errors import WaypostError
from core.logging import mask_phone
from messaging.models import Message, MessageEvent, Suppression
from messaging.services import message_mark_failed, message_requeue
from messaging.states import EventSource


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MessageEventInline(ReadOnlyMixin, admin.TabularInline):
    model = MessageEvent
    fields = ("occurred_at", "type", "source", "round", "detail", "recorded_at")
    readonly_fields = fields
    ordering = ("occurred_at", "id")
    extra = 0


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "tenant",
        "masked_recipient",
        "template_name",
        "state",
        "stalled",
        "attempts",
        "error_code",
        "state_changed_at",
    )
    list_filter = ("state", "stalled", "error_class", "tenant")
    search_fields = ("id", "provider_message_id", "idempotency_key")
    list_select_related = ("tenant",)
    inlines = [MessageEventInline]
    actions = ["resend", "mark_failed"]
    readonly_fields = [f.name for f in Message._meta.fields]

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") or obj is None  # view page + actions only

    @admin.display(description="to")
    def masked_recipient(self, obj):
        return format_html("<code>{}</code>", mask_phone(obj.recipient))

    @admin.action(description="Resend (new round; may duplicate an unknown submit)")
    def resend(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda m: message_requeue(
                message=m, source=EventSource.OPERATOR, reason=f"resent by {request.user}"
            ),
        )

    @admin.action(description="Mark failed (give up)")
    def mark_failed(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda m: message_mark_failed(
                message=m, source=EventSource.OPERATOR, reason=f"marked failed by {request.user}"
            ),
        )

    def _each(self, request, queryset, action):
        done = 0
        for message in queryset:
            try:
                action(message)
                done += 1
            except WaypostError as exc:
                self.message_user(request, f"{message.pk}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{done} message(s) updated.")


@admin.register(MessageEvent)
class MessageEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("occurred_at", "message", "type", "source", "round")
    list_filter = ("type", "source")
    search_fields = ("message__id",)


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("tenant", "recipient", "reason", "created_at")
    list_filter = ("tenant", "reason")
    search_fields = ("recipient",)
