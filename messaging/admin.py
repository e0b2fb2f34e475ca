"""The on-call admin for messages: find the message, see what happened and what comes next,
act on it with a reason.

* Scoped: staff see and act on their tenants only (``tenants.scoping``).
* Lists show a short id, the tenant, the masked recipient (in full only with the
  ``messaging.view_recipient`` permission), the template, the state as a badge, the stall and
  the error; filters for tenant, state, stall, error code and class, sender, template and age;
  search by id, wamid, idempotency key or recipient.
* A message page is a summary (state, stall, error class, what Waypost does next and when) and
  the ledger as a timeline, payloads folded.
* Actions need a reason, recorded as an operator event with the user: retry now (for an
  ``unknown`` submit only with "I accept a possible duplicate"), cancel, mark resolved (a
  stall dealt with), mark failed (give up).

The ledger is read-only here as in the database: no add, change or delete.

Permissions: messages, like their ledger, are never edited through a form, so *view* is all
a page needs (Django's view-only admin) and a user without it sees nothing. A message changes
only through the actions, which need ``messaging.change_message`` (``allowed_permissions =
("act",)``, ``MessageAdmin.has_act_permission``): a view-only user neither sees them nor can
post them.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core.errors import WaypostError
from core.ids import short
from core.logging import mask_phone
from messaging.models import Contact, Message, MessageEvent, Suppression
from messaging.selectors import (
    contact_messages,
    message_contact,
    message_errors,
    message_next_step,
    message_payload,
    message_timeline,
)
from messaging.send.inputs import BSUID
from messaging.send.intake import message_cancel
from messaging.send.requeue import message_requeue
from messaging.states import ErrorClass, EventSource, MessageState
from messaging.track.stalls import message_mark_failed, message_resolve
from tenants.scoping import TenantScopedAdmin, allowed_tenants, can_see_recipients, shown_numbers
from whatsapp import error_info

BADGES = {
    MessageState.QUEUED: "#6c757d",
    MessageState.SUBMITTING: "#0d6efd",
    MessageState.RETRY_SCHEDULED: "#946c00",
    MessageState.UNKNOWN: "#c35a00",
    MessageState.ACCEPTED: "#0d6efd",
    MessageState.HELD: "#946c00",
    MessageState.SENT: "#0a7ea4",
    MessageState.DELIVERED: "#1e7e34",
    MessageState.READ: "#14532d",
    MessageState.FAILED: "#b02a37",
    MessageState.REJECTED: "#b02a37",
    MessageState.CANCELLED: "#6c757d",
    MessageState.EXPIRED: "#6c757d",
}
_BADGE = (
    '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-size:11px;'
    'font-weight:600;white-space:nowrap">{}</span>'
)


def badge(state: str) -> str:
    return format_html(_BADGE, BADGES.get(state, "#555"), state)


def ago(when) -> str:
    seconds = int((timezone.now() - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def at_second(when) -> str:
    return f"{timezone.localtime(when):%Y-%m-%d %H:%M:%S}"


def _info(code: str, provider: str | None):
    """The provider's table entry for ``code`` (``whatsapp.error_info``; without a provider,
    the table every provider Waypost ships speaks)."""
    if not code:
        return None
    return error_info(code, provider=provider) if provider else error_info(code)


def error_title(code: str, stored_title: str = "", *, provider: str | None = None) -> str:
    """An error's title: the provider's table's, else as stored."""
    info = _info(code, provider)
    return info.title if info else stored_title


def error_block(code, stored_title, details, error_class, *, provider: str | None = None):
    """An error as the on-call person needs it: code and title, what it means and who must
    act — from the provider's table (``whatsapp.error_info``), not restated here — with the
    class Waypost gave it and the provider's own words when they say more."""
    info = _info(code, provider)
    said = (
        " — ".join(
            part for part in dict.fromkeys((stored_title, details)) if part and part != info.title
        )
        if info
        else details
    )
    kind = ErrorClass(error_class).label if error_class in ErrorClass.values else error_class
    return format_html(
        '<code>{}</code> <strong>{}</strong>{}<div style="color:#444">{}{}</div>{}',
        code or "—",
        info.title if info else stored_title,
        format_html("<div>{}</div>", info.meaning) if info else "",
        format_html("Who must act: <strong>{}</strong> · ", info.who_acts.label) if info else "",
        format_html("Waypost: <strong>{}</strong>", kind) if kind else "",
        format_html(
            '<div style="color:#666;font-size:11px">The provider said: {}</div>',
            shown_numbers(said),
        )
        if said
        else "",
    )


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- filters --------------------------------------------------------------------------------------


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    SPANS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}

    def lookups(self, request, model_admin):
        return [
            ("1h", "Last hour"),
            ("24h", "Last 24 hours"),
            ("7d", "Last 7 days"),
            ("old", "Older"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "old":
            return queryset.filter(created_at__lt=timezone.now() - self.SPANS["7d"])
        if self.value() in self.SPANS:
            return queryset.filter(created_at__gte=timezone.now() - self.SPANS[self.value()])
        return queryset


class ErrorCodeFilter(admin.SimpleListFilter):
    """The error codes that occur, most frequent first."""

    title = "error code"
    parameter_name = "error_code"

    def lookups(self, request, model_admin):
        codes = (
            model_admin.get_queryset(request)
            .exclude(error_code="")
            .values_list("error_code")
            .annotate(n=Count("pk"))
            .order_by("-n")[:15]
        )
        return [(code, f"{code} {error_title(code)} ({n})".replace("  ", " ")) for code, n in codes]

    def queryset(self, request, queryset):
        return queryset.filter(error_code=self.value()) if self.value() else queryset


class TemplateFilter(admin.SimpleListFilter):
    title = "template"
    parameter_name = "template_name"

    def lookups(self, request, model_admin):
        names = (
            model_admin.get_queryset(request)
            .exclude(template_name="")
            .values_list("template_name", flat=True)
            .distinct()
            .order_by("template_name")[:50]
        )
        return [(n, n) for n in names]

    def queryset(self, request, queryset):
        return queryset.filter(template_name=self.value()) if self.value() else queryset


class ContactFilter(admin.SimpleListFilter):
    """A contact's messages (``?contact=<id>``, the link on a contact's page): to its number or
    its BSUID (``messaging.selectors.contact_messages``). Offered only when chosen."""

    title = "contact"
    parameter_name = "contact"

    def _contact(self, request):
        value = self.value() or ""
        if not value.isdigit():
            return None
        return Contact.objects.filter(
            pk=int(value), tenant__in=allowed_tenants(request.user)
        ).first()

    def lookups(self, request, model_admin):
        if not self.value():
            return []
        contact = self._contact(request)
        return [(self.value(), str(contact) if contact else "no such contact")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        contact = self._contact(request)
        return queryset & contact_messages(contact=contact) if contact else queryset.none()


# --- actions with a reason -----------------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=500,
        help_text="Recorded in each message's ledger with your name.",
    )
    accept_duplicate = forms.BooleanField(
        required=False,
        label="I accept a possible duplicate",
        help_text="An unknown submit may have reached the user: retrying can send it twice.",
    )


def _with_reason(title: str, *, duplicates_matter: bool = False):
    """Turn ``apply(admin, request, message, reason, accept_duplicate)`` into an admin action
    that first asks for a reason (and, when it matters, for the duplicate consent). Offered,
    and run, only for users with the admin's ``act`` permission."""

    def decorator(apply):
        def action(model_admin, request, queryset):
            form = ReasonForm(request.POST if "apply" in request.POST else None)
            unknown = (
                queryset.filter(state=MessageState.UNKNOWN).count() if duplicates_matter else 0
            )
            if form.is_bound and form.is_valid():
                if unknown and not form.cleaned_data["accept_duplicate"]:
                    form.add_error("accept_duplicate", "Required to retry an unknown submit.")
                else:
                    done = 0
                    for message in queryset:
                        try:
                            apply(model_admin, request, message, form.cleaned_data["reason"])
                            done += 1
                        except WaypostError as exc:
                            model_admin.message_user(
                                request, f"{short(message.pk)}: {exc.message}", messages.WARNING
                            )
                    model_admin.message_user(request, f"{title}: {done} message(s).")
                    return None
            return TemplateResponse(
                request,
                "admin/messaging/message/action_reason.html",
                {
                    **model_admin.admin_site.each_context(request),
                    "title": title,
                    "form": form,
                    "queryset": queryset,
                    "unknown": unknown,
                    "action": apply.__name__,
                    "opts": model_admin.model._meta,
                    "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)],
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )

        action.__name__ = apply.__name__
        return admin.action(description=title, permissions=("act",))(action)

    return decorator


def _by(request, reason: str) -> str:
    return f"{reason} — {request.user}"


# --- the message admin ------------------------------------------------------------------------


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, TenantScopedAdmin):
    list_display = (
        "short_id",
        "tenant",
        "recipient_display",
        "template_shown",
        "state_badge",
        "error",
        "tries",
    )
    list_display_links = ("short_id",)
    list_filter = (
        "tenant",
        "state",
        "stalled",
        "stalled_reason",
        "error_class",
        ErrorCodeFilter,
        "sender",
        TemplateFilter,
        AgeFilter,
        ContactFilter,
    )
    search_fields = ("=provider_message_id", "=idempotency_key")
    ordering = ("-created_at",)
    search_help_text = "A message id, wamid, idempotency key or recipient (+4915…)."
    list_select_related = ("tenant", "sender")
    list_per_page = 50
    show_full_result_count = False
    actions = ["retry_now", "cancel", "mark_resolved", "mark_failed"]
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "next_step",
                    "error_panel",
                    "summary",
                )
            },
        ),
        ("Timeline", {"fields": ("timeline",)}),
        ("Message", {"fields": ("request_panel",), "classes": ("collapse",)}),
    ]
    readonly_fields = ("summary", "next_step", "error_panel", "timeline", "request_panel")

    def has_act_permission(self, request) -> bool:
        """May ``request.user`` retry, cancel, resolve or fail messages (the actions)?"""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            pass
        if term.startswith("+") or term.isdigit():
            number = term if term.startswith("+") else f"+{term}"
            return queryset.filter(recipient=number), False
        if BSUID.match(term):  # a business-scoped user id
            return queryset.filter(recipient_user_id=term), False
        return super().get_search_results(request, queryset, term)

    # --- list columns ---

    # The columns fit 1,400 px beside the filters: long values wrap inside a bounded width
    # (tests/operations/test_admin_browser.py measures it).

    @admin.display(description="message", ordering="created_at")
    def short_id(self, obj):
        return format_html(
            '<code title="{}">{}</code><div style="font-size:11px;color:#666" title="{}">{}</div>',
            obj.pk,
            short(obj.pk),
            at_second(obj.created_at),
            ago(obj.created_at),
        )

    @admin.display(description="to")
    def recipient_display(self, obj):
        shown = obj.recipient if can_see_recipients() else mask_phone(obj.recipient)
        return format_html("<code>{}</code>", shown or obj.recipient_user_id)

    @admin.display(description="template", ordering="template_name")
    def template_shown(self, obj):
        return format_html(
            '<span style="overflow-wrap:anywhere">{}</span>', obj.template_name or "text"
        )

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        if not obj.stalled:
            return badge(obj.state)
        return format_html(
            '{}<div style="margin-top:3px;max-width:170px;font-size:11px;color:#c35a00;'
            'font-weight:600">stalled: {}</div>',
            badge(obj.state),
            obj.get_stalled_reason_display() or "stalled",
        )

    @admin.display(description="error", ordering="error_code")
    def error(self, obj):
        if not (obj.error_code or obj.error_title):
            return ""
        info = _info(obj.error_code, obj.sender.provider)
        return format_html(
            '<div style="min-width:140px;max-width:220px" title="{}"><code>{}</code> {}</div>',
            info.meaning if info else shown_numbers(obj.error_details),
            obj.error_code,
            info.title if info else shown_numbers(obj.error_title)[:80],
        )

    @admin.display(description="tries", ordering="attempts")
    def tries(self, obj):
        return obj.attempts

    # The display methods below ask whether this user sees numbers: TenantScopedAdmin keeps the
    # request being answered (per thread) for them.
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        read_only = {  # a message changes through actions (with a reason), never by saving
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }
        return super().changeform_view(
            request, object_id, form_url, {**(extra_context or {}), **read_only}
        )

    # --- the message page ---

    @admin.display(description="message")
    def summary(self, obj):
        to = obj.recipient if can_see_recipients() else mask_phone(obj.recipient)
        template = f"{obj.template_name} ({obj.template_language})" if obj.template_name else "text"
        rows = [
            ("id", format_html("<code>{}</code>", obj.pk)),
            (
                "state",
                format_html(
                    "{} since {} ({})",
                    badge(obj.state),
                    obj.state_changed_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    ago(obj.state_changed_at),
                ),
            ),
            ("tenant", obj.tenant.slug),
            ("to", format_html("<code>{}</code>{}", to or "—", self._contact_link(obj))),
            ("BSUID", format_html("<code>{}</code>", obj.recipient_user_id or "—")),
            ("from", obj.sender.phone_number_id),
            ("template", template),
            ("wamid", format_html("<code>{}</code>", obj.provider_message_id or "—")),
            ("attempts", f"{obj.attempts} (round {obj.round})"),
            (
                "expires",
                obj.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC") if obj.expires_at else "—",
            ),
            (
                "pricing",
                f"{obj.pricing_type} · {obj.pricing_category} · {obj.pricing_model}"
                if obj.pricing_type
                else "—",
            ),
            ("idempotency key", format_html("<code>{}</code>", obj.idempotency_key)),
            (
                "metadata",
                format_html("<code>{}</code>", json.dumps(obj.metadata, ensure_ascii=False)),
            ),
        ]
        if obj.stalled:
            rows.insert(
                2, ("stalled", format_html(_BADGE, "#c35a00", obj.get_stalled_reason_display()))
            )
        return format_html(
            '<table style="border:0">{}</table>',
            format_html_join(
                "",
                '<tr><th style="text-align:left;padding-right:16px">{}</th><td>{}</td></tr>',
                rows,
            ),
        )

    @admin.display(description="what next")
    def next_step(self, obj):
        return format_html("<strong>{}</strong>", message_next_step(message=obj))

    def _contact_link(self, obj):
        """A link to the recipient's contact, when Waypost knows one."""
        contact = message_contact(message=obj)
        if contact is None:
            return ""
        url = reverse("admin:messaging_contact_change", args=[contact.pk])
        return format_html(' <a href="{}">contact &rsaquo;</a>', url)

    @admin.display(description="error")
    def error_panel(self, obj):
        """The error the message holds, and every earlier one its ledger recorded (a retried
        message's first error is not hidden behind its last)."""
        errors = message_errors(message=obj)
        provider = obj.sender.provider
        final = next((e for e in errors if e.final), None)
        shown = (
            error_block(
                final.code, final.title, final.details, final.error_class, provider=provider
            )
            if final
            else "—"
        )
        earlier = [e for e in errors if not e.final]
        if not earlier:
            return shown
        rows = [
            (
                at_second(e.at),
                e.round,
                error_block(e.code, e.title, e.details, e.error_class, provider=provider),
            )
            for e in earlier
        ]
        return format_html(
            '{}<p style="margin:12px 0 4px"><strong>Before it</strong> ({} earlier error{}):</p>'
            "<table><thead><tr><th>when (UTC)</th><th>round</th><th>error</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            shown,
            len(earlier),
            "" if len(earlier) == 1 else "s",
            format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>", rows),
        )

    @admin.display(description="ledger")
    def timeline(self, obj):
        rows = []
        for event in message_timeline(message=obj):
            detail = json.dumps(event["detail"], indent=2, ensure_ascii=False, default=str)
            if not can_see_recipients():
                detail = mask_phone(detail)
            folded = (
                format_html("<details><summary>detail</summary><pre>{}</pre></details>", detail)
                if event["detail"]
                else ""
            )
            rows.append(
                (
                    event["recorded_at"].strftime("%H:%M:%S.%f")[:-3],
                    event["occurred_at"].strftime("%Y-%m-%d %H:%M:%S"),
                    event["type"],
                    event["source"],
                    badge(event["state"]) if event["state"] else "",
                    folded,
                )
            )
        pruned = (
            format_html(
                "<p>The ledger was pruned for retention on {} (the tenant keeps ledgers {} days);"
                " this message's summary and final state are above.</p>",
                obj.ledger_pruned_at.strftime("%Y-%m-%d %H:%M UTC"),
                obj.tenant.ledger_retention_days,
            )
            if obj.ledger_pruned_at
            else ""
        )
        if pruned and not rows:
            return pruned
        return format_html(
            "{}<table><thead><tr><th>recorded</th><th>happened</th><th>event</th><th>source</th>"
            "<th>state</th><th></th></tr></thead><tbody>{}</tbody></table>",
            pruned,
            format_html_join(
                "",
                "<tr><td><code>{}</code></td><td>{}</td><td><strong>{}</strong></td><td>{}</td>"
                "<td>{}</td><td>{}</td></tr>",
                rows,
            ),
        )

    @admin.display(description="request and payload")
    def request_panel(self, obj):
        sent = message_payload(message=obj) or obj.parameters
        payload = json.dumps(sent, indent=2, ensure_ascii=False)
        if not can_see_recipients():
            payload = mask_phone(payload)
        return format_html("<pre>{}</pre>", payload)

    # --- actions ---

    @_with_reason("Retry now", duplicates_matter=True)
    def retry_now(self, request, message, reason):
        message_requeue(message=message, source=EventSource.OPERATOR, reason=_by(request, reason))

    @_with_reason("Cancel")
    def cancel(self, request, message, reason):
        message_cancel(
            tenant=message.tenant,
            message_id=message.pk,
            source=EventSource.OPERATOR,
            reason=_by(request, reason),
        )

    @_with_reason("Mark resolved (stall dealt with)")
    def mark_resolved(self, request, message, reason):
        message_resolve(message=message, source=EventSource.OPERATOR, reason=_by(request, reason))

    @_with_reason("Mark failed (give up)")
    def mark_failed(self, request, message, reason):
        message_mark_failed(
            message=message, source=EventSource.OPERATOR, reason=_by(request, reason)
        )


@admin.register(MessageEvent)
class MessageEventAdmin(ReadOnlyMixin, TenantScopedAdmin):
    tenant_path = "message__tenant"
    list_display = ("recorded_at", "message_short", "type", "source", "round")
    list_filter = ("type", "source")
    search_fields = ("=message__id",)
    list_select_related = ("message",)
    show_full_result_count = False

    @admin.display(description="message")
    def message_short(self, obj):
        return format_html("<code>{}</code>", short(obj.message_id))


@admin.register(Suppression)
class SuppressionAdmin(TenantScopedAdmin):
    list_display = ("tenant", "masked_recipient", "reason", "created_at")
    list_filter = ("tenant", "reason")
    search_fields = ("=recipient",)

    # An existing suppression's number is shown masked, and not editable, unless the user may
    # see recipients; adding one by its number needs no such permission.
    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None or can_see_recipients(request):
            return fields
        return [("masked_recipient" if f == "recipient" else f) for f in fields]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is None or can_see_recipients(request):
            return readonly
        return (*readonly, "masked_recipient")

    @admin.display(description="recipient")
    def masked_recipient(self, obj):
        return format_html("<code>{}</code>", shown_numbers(obj.recipient))


@admin.register(Contact)
class ContactAdmin(ReadOnlyMixin, TenantScopedAdmin):
    """WhatsApp users by phone number and/or business-scoped user id, with their window and
    marketing preference. Numbers masked unless the user may see recipients."""

    list_display = (
        "tenant",
        "masked_wa_id",
        "user_id",
        "username",
        "last_inbound_at",
        "marketing",
        "messages_link",
    )
    list_filter = ("tenant",)
    search_fields = ("=wa_id", "=user_id", "username")
    ordering = ("-last_inbound_at",)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return [("masked_wa_id" if f == "wa_id" else f) for f in fields]

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "messages")

    @admin.display(description="phone number")
    def masked_wa_id(self, obj):
        if not obj.wa_id:
            return "—"
        return format_html("<code>{}</code>", shown_numbers(obj.wa_id))

    @admin.display(description="marketing")
    def marketing(self, obj):
        if obj.marketing_stopped_at:
            return format_html(_BADGE, "#b02a37", "stopped")
        return format_html(_BADGE, "#1e7e34", "allowed")

    @staticmethod
    def _messages_url(obj) -> str:
        return f"{reverse('admin:messaging_message_changelist')}?contact={obj.pk}"

    @admin.display(description="messages")
    def messages_link(self, obj):
        return format_html('<a href="{}">messages &rsaquo;</a>', self._messages_url(obj))

    @admin.display(description="messages")
    def messages(self, obj):
        """How many messages the tenant sent this user, the latest, and a link to them all."""
        sent = contact_messages(contact=obj).order_by("-created_at")
        latest = sent.first()
        if latest is None:
            return "None sent."
        return format_html(
            '<a href="{}">{} message{} &rsaquo;</a> — the latest {} UTC ({}), {}',
            self._messages_url(obj),
            sent.count(),
            "" if sent.count() == 1 else "s",
            at_second(latest.created_at),
            latest.template_name or "text",
            badge(latest.state),
        )
