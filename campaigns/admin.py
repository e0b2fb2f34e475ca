"""The campaigns admin: for business users who send them and for the person on call.

* Scoped (``tenants.scoping.TenantScopedAdmin``): staff see, download and act on their
  tenants' campaigns only; another tenant's campaign is not found, by its URL either.
* The list: name and short id, tenant, template, sender (its number masked unless the user has
  ``messaging.view_recipient``), the state as a badge with why it waits (held at the messaging
  limit, outside the send window), a progress bar (read, delivered, sent, on its way, failed,
  not sent — of the audience) with the percentage done, rows and invalid rows, when it is due
  or started, when made. Filters for state, tenant, preflight and held reason; search by name
  (or a campaign id).
* A campaign's page: a summary with the actions its state allows; once it is completed or
  cancelled the **final report** (delivered and read rates of what Meta sent, failures by error
  code with what each means and who must act, messages by pricing category and type); live
  progress (counts by state, rate, estimated completion, the held reason); the **preflight**
  (rows by outcome, errors by code with an example, the messaging-limit outlook, warnings);
  the first 100 rows not sent, masked, and every one as a CSV download (masked likewise).
* **Add campaign** (``campaigns.forms.CampaignCreateForm``): a template, a sender, a CSV
  audience, ``send_at``, a send window, a rate, a time to live — made by
  ``campaigns.services.campaign_create``, the import and preflight the API runs, then shown
  as a draft with its preflight.
* Actions, from the list or a campaign's page: start (optionally skipping the invalid rows),
  pause, resume, cancel — each asks first (pause, resume and cancel ask for a reason) and
  calls the service with ``by="admin:<username>"``; a refused change (``core.errors``) is an
  error message, never a 500.

Permissions: a campaign changes only through the services, never by a form, so a page needs
the *view* permission; the actions need ``campaigns.change_campaign`` (``act``), the add form
``campaigns.add_campaign``. Nothing is deleted here: a draft not wanted is cancelled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join

from campaigns.audience import campaign_window, csv_rows, file_digest
from campaigns.forms import CampaignActionForm, CampaignCreateForm
from campaigns.models import FINISHED, TRANSITIONS, Campaign, CampaignState, HeldReason
from campaigns.selectors import (
    campaign_progress,
    campaign_report,
    invalid_row_examples,
    invalid_rows,
    invalid_rows_csv,
)
from campaigns.services import (
    campaign_cancel,
    campaign_create,
    campaign_pause,
    campaign_resume,
    campaign_start,
)
from core.errors import WaypostError
from core.ids import short
from core.logging import mask_phone
from messaging.admin import ago, at_second
from messaging.admin import badge as message_badge
from messaging.states import error_info
from tenants.scoping import TenantScopedAdmin, can_see_recipients, shown_numbers

STATE_COLOURS = {
    CampaignState.DRAFT: "#6c757d",
    CampaignState.SCHEDULED: "#946c00",
    CampaignState.RUNNING: "#0d6efd",
    CampaignState.PAUSED: "#c35a00",
    CampaignState.COMPLETED: "#1e7e34",
    CampaignState.CANCELLED: "#495057",
}
HELD_SHORT = {
    HeldReason.MESSAGING_LIMIT: "held at the limit",
    HeldReason.OUTSIDE_WINDOW: "outside its window",
    HeldReason.SENDER_INACTIVE: "sender inactive",
    HeldReason.TEMPLATE_WAITING: "template paused",
}
_BADGE = (
    '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-size:11px;'
    'font-weight:600;white-space:nowrap">{}</span>'
)
# The progress bar's segments, in the order drawn: (name, colour, the counts they add up).
SEGMENTS = (
    ("read", "#14532d", ("read",)),
    ("delivered", "#1e7e34", ("delivered",)),
    ("sent", "#0a7ea4", ("sent",)),
    ("on its way", "#6ea8fe", ("queued", "accepted", "held", "unknown")),
    ("failed", "#b02a37", ("failed",)),
    ("not sent", "#adb5bd", ("invalid", "skipped", "expired", "cancelled")),
)
INVALID_ROWS_SHOWN = 100


def state_badge(state: str):
    return format_html(_BADGE, STATE_COLOURS.get(state, "#555"), state)


def held_badge(reason: str):
    """Why a running campaign waits, as a badge that may wrap (the list's column is narrow)."""
    if not reason:
        return ""
    return format_html(
        '<span title="{}" style="display:inline-block;background:#c35a00;color:#fff;'
        'padding:2px 8px;border-radius:10px;font-size:11px;font-weight:600;max-width:120px">'
        "{}</span>",
        HeldReason(reason).label if reason in HeldReason.values else reason,
        HELD_SHORT.get(reason, reason),
    )


def progress_bar(progress: dict, *, width: int = 130):
    """The audience as one bar: a segment per group of counts (``SEGMENTS``), each as wide as
    its share of the rows, what is still pending left blank; the percentage done beside."""
    counts = progress["counts"]
    total = counts["rows"] or 1
    parts = []
    for name, colour, keys in SEGMENTS:
        n = sum(counts[k] for k in keys)
        if n:
            parts.append((name, f"{name}: {n}", colour, f"{100 * n / total:.3f}"))
    segments = format_html_join(
        "",
        '<span class="campaign-segment" data-segment="{}" title="{}" '
        'style="display:inline-block;height:100%;background:{};width:{}%"></span>',
        parts,
    )
    return format_html(
        '<div class="campaign-progress" style="display:flex;align-items:center;gap:6px">'
        '<span style="display:inline-flex;width:{}px;height:12px;background:#e9ecef;'
        'border-radius:6px;overflow:hidden" title="pending: {}">{}</span>'
        '<span style="font-size:11px;white-space:nowrap">{} %</span></div>',
        width,
        counts["pending"],
        segments,
        progress["percent_done"],
    )


def _shown_recipient(row) -> str:
    """A row's recipient as the user may see it: a number (or what failed to parse as one)
    masked without ``messaging.view_recipient``; a BSUID as it is."""
    if row.recipient_user_id and not row.recipient:
        return row.recipient_user_id
    return shown_numbers(row.recipient or row.raw_recipient)


def _percent(value) -> str:
    return "—" if value is None else f"{value} %"


# --- actions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Act:
    """One action: its title, what it says before it acts, whether it asks for a reason, the
    state it leads to (offered only where ``models.TRANSITIONS`` allows it), and the service."""

    name: str
    title: str
    warning: str
    asks_reason: bool
    to: str

    def apply(self, campaign: Campaign, form: CampaignActionForm, by: str) -> Campaign:
        reason = form.cleaned_data.get("reason", "")
        if self.name == "start":
            return campaign_start(
                campaign=campaign, skip_invalid=form.cleaned_data["skip_invalid"], by=by
            )
        service = {"pause": campaign_pause, "resume": campaign_resume, "cancel": campaign_cancel}
        return service[self.name](campaign=campaign, reason=reason, by=by)

    def offered(self, campaign: Campaign) -> bool:
        if self.name == "start":
            return campaign.state == CampaignState.DRAFT
        if self.name == "resume":
            return campaign.state == CampaignState.PAUSED
        return self.to in TRANSITIONS[campaign.state]


ACTS = {
    act.name: act
    for act in (
        Act(
            "start",
            "Start",
            "A draft starts at its send_at (scheduled), or now. A campaign whose preflight "
            "found invalid rows starts only if they are skipped: they are then never sent.",
            asks_reason=False,
            to=CampaignState.RUNNING,
        ),
        Act(
            "pause",
            "Pause",
            "Nothing more is released, and its messages not yet on their way to the provider "
            "wait, until it is resumed. The reason is sent with campaign.paused.",
            asks_reason=True,
            to=CampaignState.PAUSED,
        ),
        Act(
            "resume",
            "Resume",
            "It goes on from where it stopped (at its send_at if that is still ahead), at its "
            "pace, inside its window and the messaging limit.",
            asks_reason=True,
            to=CampaignState.RUNNING,
        ),
        Act(
            "cancel",
            "Cancel",
            "Rows not yet sent are skipped and its messages not yet submitted are cancelled. "
            "This cannot be undone.",
            asks_reason=True,
            to=CampaignState.CANCELLED,
        ),
    )
}


def _list_action(act: Act):
    def action(model_admin, request, queryset):
        return model_admin.act(request, act, list(queryset))

    action.__name__ = act.name
    return admin.action(description=f"{act.title} the selected campaigns…", permissions=("act",))(
        action
    )


# --- the campaign admin --------------------------------------------------------------------------


@admin.register(Campaign)
class CampaignAdmin(TenantScopedAdmin):
    list_display = (
        "campaign",
        "tenant",
        "template_shown",
        "sender_shown",
        "state_shown",
        "progress",
        "rows",
        "timing",
        "created",
    )
    list_display_links = ("campaign",)
    list_filter = ("state", "tenant", "preflight_status", "held_reason")
    search_fields = ("name",)
    search_help_text = "A campaign's name or id."
    list_select_related = ("tenant", "template", "sender")
    list_per_page = 25
    ordering = ("-created_at",)
    actions = [_list_action(act) for act in ACTS.values()]
    readonly_fields = (
        "summary",
        "report_panel",
        "progress_panel",
        "preflight_panel",
        "invalid_rows_panel",
    )

    # --- permissions: pages view, actions act, the add form adds; no edit, no delete ---

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_act_permission(self, request) -> bool:
        """May ``request.user`` start, pause, resume or cancel campaigns?"""
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/act/<str:name>/",
                self.admin_site.admin_view(self.act_view),
                name="{}_{}_act".format(*info),
            ),
            path(
                "<path:object_id>/invalid-rows.csv",
                self.admin_site.admin_view(self.invalid_rows_csv_view),
                name="{}_{}_invalid_rows".format(*info),
            ),
            *super().get_urls(),
        ]

    def get_search_results(self, request, queryset, search_term):
        try:
            return queryset.filter(pk=uuid.UUID(search_term.strip())), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)

    def _progress(self, obj) -> dict:
        """``campaign_progress``, once per campaign and request (several columns show it)."""
        if not hasattr(obj, "_admin_progress"):
            obj._admin_progress = campaign_progress(obj)
        return obj._admin_progress

    # --- list columns ---

    @admin.display(description="campaign", ordering="name")
    def campaign(self, obj):
        return format_html(
            '<div style="min-width:90px;max-width:200px;overflow-wrap:anywhere">'
            "<strong>{}</strong></div>"
            '<code style="font-size:11px" title="{}">{}</code>',
            obj.name,
            obj.pk,
            short(obj.pk),
        )

    @admin.display(description="template", ordering="template__name")
    def template_shown(self, obj):
        return format_html(
            '<div style="min-width:100px;max-width:150px;overflow-wrap:anywhere">{}</div>'
            '<div style="font-size:11px;color:#666">{} · {}</div>',
            obj.template.name,
            obj.template.language,
            obj.template.category.lower(),
        )

    @admin.display(description="sender")
    def sender_shown(self, obj):
        return format_html(
            '<code>{}</code><div style="font-size:11px;color:#666">{}</div>',
            shown_numbers(obj.sender.display_phone_number) or "—",
            obj.sender.phone_number_id,
        )

    @admin.display(description="state", ordering="state")
    def state_shown(self, obj):
        return format_html(
            '<div style="max-width:170px">{}{}</div>',
            state_badge(obj.state),
            format_html('<div style="margin-top:3px">{}</div>', held_badge(obj.held_reason))
            if obj.held_reason
            else "",
        )

    @admin.display(description="progress")
    def progress(self, obj):
        return progress_bar(self._progress(obj))

    @admin.display(description="rows", ordering="rows_total")
    def rows(self, obj):
        invalid = (
            format_html(
                '<div style="font-size:11px;color:#b02a37">{} invalid</div>', obj.rows_invalid
            )
            if obj.rows_invalid
            else ""
        )
        return format_html("{}{}", obj.rows_total, invalid)

    @admin.display(description="due / started (UTC)", ordering="send_at")
    def timing(self, obj):
        if obj.started_at:
            return format_html(
                '<span title="{}">started {}</span>', at_second(obj.started_at), ago(obj.started_at)
            )
        if obj.send_at:
            return format_html(
                'due<div style="white-space:nowrap">{}</div>', f"{obj.send_at:%Y-%m-%d %H:%M}"
            )
        return "when started"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return format_html(
            '<span title="{}">{}</span>', at_second(obj.created_at), ago(obj.created_at)
        )

    # --- the campaign's page ---

    def get_fieldsets(self, request, obj=None):
        """What matters first on top: a draft's preflight, a finished campaign's report."""
        progress = ("Progress", {"fields": ("progress_panel",)})
        checked = [
            ("Preflight", {"fields": ("preflight_panel",)}),
            ("Rows not sent", {"fields": ("invalid_rows_panel",)}),
        ]
        summary = (None, {"fields": ("summary",)})
        if obj is not None and obj.state == CampaignState.DRAFT:
            return [summary, *checked, progress]
        if obj is not None and obj.state in FINISHED:
            return [summary, ("Final report", {"fields": ("report_panel",)}), progress, *checked]
        return [summary, progress, *checked]

    change_form_template = "admin/campaigns/campaign/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The page, read-only, with the actions its state allows the user (beside History)."""
        campaign = self.get_object(request, unquote(object_id))
        acts = []
        if campaign is not None and self.has_act_permission(request):
            acts = [
                (act.title, reverse("admin:campaigns_campaign_act", args=[campaign.pk, act.name]))
                for act in ACTS.values()
                if act.offered(campaign)
            ]
        context = {
            **(extra_context or {}),
            "campaign_acts": acts,
            "show_save": False,
            "show_save_and_continue": False,
            "show_delete": False,
        }
        return super().change_view(request, object_id, form_url, context)

    def _panel(self, name: str, context: dict):
        """A panel of the page, rendered by its template (which escapes what it shows)."""
        return render_to_string(f"admin/campaigns/campaign/{name}.html", context)

    @admin.display(description="campaign")
    def summary(self, obj):
        window = campaign_window(obj)
        return self._panel(
            "summary",
            {
                "c": obj,
                "state": state_badge(obj.state),
                "held": held_badge(obj.held_reason),
                "reason": shown_numbers(obj.state_reason),
                "sender_number": shown_numbers(obj.sender.display_phone_number),
                "window": window.as_dict() if window else None,
                "messages_url": reverse("admin:messaging_message_changelist")
                + f"?campaign__id__exact={obj.pk}",
            },
        )

    @admin.display(description="progress")
    def progress_panel(self, obj):
        progress = self._progress(obj)
        counts = progress["counts"]
        states = [
            (message_badge(state), counts[key])
            for state, key in (
                ("queued", "queued"),
                ("accepted", "accepted"),
                ("held", "held"),
                ("unknown", "unknown"),
                ("sent", "sent"),
                ("delivered", "delivered"),
                ("read", "read"),
                ("failed", "failed"),
                ("expired", "expired"),
                ("cancelled", "cancelled"),
            )
        ]
        return self._panel(
            "progress",
            {
                "c": obj,
                "p": progress,
                "bar": progress_bar(progress, width=480),
                "states": states,
                "held": held_badge(obj.held_reason),
                "eta": parse_datetime(progress["estimated_completion"] or ""),
                "live": obj.state in (CampaignState.RUNNING, CampaignState.SCHEDULED),
                "now": timezone.now(),
            },
        )

    @admin.display(description="preflight")
    def preflight_panel(self, obj):
        report = obj.preflight or {}
        examples = invalid_row_examples(obj) if report.get("errors") else {}
        provider = obj.sender.provider
        errors = []
        for code, n in (report.get("errors") or {}).items():
            info = error_info(code, provider=provider)
            errors.append(
                {
                    "code": code,
                    "n": n,
                    "meaning": info.meaning if info else "",
                    "example": shown_numbers(examples.get(code, "")),
                }
            )
        return self._panel(
            "preflight",
            {"c": obj, "r": report, "limit": report.get("messaging_limit"), "errors": errors},
        )

    @admin.display(description="rows not sent")
    def invalid_rows_panel(self, obj):
        rows = invalid_rows(obj)
        total = rows.count()
        shown = [
            {
                "number": row.number,
                "recipient": _shown_recipient(row),
                "outcome": row.outcome,
                "code": row.error_code,
                "message": shown_numbers(row.error_message),
            }
            for row in rows[:INVALID_ROWS_SHOWN]
        ]
        return self._panel(
            "invalid_rows",
            {
                "rows": shown,
                "total": total,
                "more": max(0, total - INVALID_ROWS_SHOWN),
                "csv_url": reverse("admin:campaigns_campaign_invalid_rows", args=[obj.pk]),
            },
        )

    @admin.display(description="final report")
    def report_panel(self, obj):
        progress = self._progress(obj)
        report = campaign_report(obj, progress["counts"])
        provider = obj.sender.provider
        failures = []
        for failure in report["failures"]:
            info = error_info(failure["code"], provider=provider)
            failures.append(
                {
                    **failure,
                    "title": info.title if info else shown_numbers(failure["title"]),
                    "meaning": info.meaning if info else "",
                    "who": info.who_acts.label if info else "",
                }
            )
        return self._panel(
            "report", {"c": obj, "r": report, "counts": progress["counts"], "failures": failures}
        )

    # --- downloads ---

    def invalid_rows_csv_view(self, request, object_id):
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None or not self.has_view_permission(request, campaign):
            raise Http404("No such campaign.")
        mask = None if can_see_recipients(request) else mask_phone
        response = StreamingHttpResponse(
            invalid_rows_csv(campaign, mask=mask), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-rows.csv"'
        return response

    # --- actions ---

    def act_view(self, request, object_id, name):
        """A campaign page's action: asks (GET), acts (POST), back to the page."""
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None or name not in ACTS:
            raise Http404("No such campaign.")
        if not self.has_act_permission(request):
            raise PermissionDenied
        answer = self.act(request, ACTS[name], [campaign], page=True)
        if answer is None:
            return HttpResponseRedirect(
                reverse("admin:campaigns_campaign_change", args=[campaign.pk])
            )
        return answer

    def act(self, request, act: Act, campaigns: list[Campaign], *, page: bool = False):
        """Ask for what ``act`` needs (a reason; for a start, whether to skip the invalid
        rows), then apply it to each campaign through its service. A refusal is reported per
        campaign and the others go on. None once done, else the page asking."""
        posted = request.method == "POST" and "apply" in request.POST
        form = CampaignActionForm(request.POST if posted else None, asks_reason=act.asks_reason)
        if form.is_bound and form.is_valid():
            by = f"admin:{request.user.username}"
            done = 0
            for campaign in campaigns:
                try:
                    act.apply(campaign, form, by)
                    done += 1
                except WaypostError as exc:
                    self.message_user(request, f"{campaign.name}: {exc.message}", messages.ERROR)
            if done:
                self.message_user(request, f"{act.title}: {done} campaign(s).", messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/campaigns/campaign/action.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{act.title} {'this campaign' if page else 'campaigns'}",
                "act": act,
                "form": form,
                "campaigns": [(c, state_badge(c.state)) for c in campaigns[:20]],
                "more": max(0, len(campaigns) - 20),
                "invalid": sum(c.rows_invalid for c in campaigns if c.state == CampaignState.DRAFT),
                "page": page,
                "opts": self.opts,
                "selected": [str(c.pk) for c in campaigns],
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "back": reverse("admin:campaigns_campaign_change", args=[campaigns[0].pk])
                if page
                else reverse("admin:campaigns_campaign_changelist"),
            },
        )

    # --- the add form ---

    def add_view(self, request, form_url="", extra_context=None):
        """A draft from a CSV audience, by ``campaign_create`` (import and preflight as the
        API's), then its page. The same form sent twice makes one campaign."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = CampaignCreateForm(
            request.POST if posted else None, request.FILES if posted else None, user=request.user
        )
        if posted and form.is_valid():
            upload = form.cleaned_data["audience"]
            digest = file_digest(upload)
            try:
                campaign, created = campaign_create(
                    tenant=form.cleaned_data["tenant"],
                    idempotency_key=form.idempotency_key(digest),
                    data=form.request_data(),
                    rows=csv_rows(upload),
                    audience_digest=digest,
                )
            except WaypostError as exc:
                form.add_error(_form_field(exc, form), exc.message)
            else:
                self._created_message(request, campaign, created)
                return HttpResponseRedirect(
                    reverse("admin:campaigns_campaign_change", args=[campaign.pk])
                )
        return TemplateResponse(
            request,
            "admin/campaigns/campaign/add_form.html",
            {
                **self.admin_site.each_context(request),
                "title": "Add campaign",
                "form": form,
                "sections": form.SECTIONS,
                "opts": self.opts,
                "has_view_permission": self.has_view_permission(request),
            },
        )

    def _created_message(self, request, campaign: Campaign, created: bool) -> None:
        if not created:
            self.message_user(
                request,
                "This form was already sent: here is the campaign it made.",
                messages.WARNING,
            )
        elif campaign.rows_invalid:
            self.message_user(
                request,
                f"Draft created: {campaign.rows_total} rows, {campaign.rows_invalid} invalid. "
                "See why below; start it skipping them, or fix the audience and add it again.",
                messages.WARNING,
            )
        else:
            self.message_user(
                request,
                f"Draft created: all {campaign.rows_total} rows passed the preflight. Start it "
                "when ready.",
                messages.SUCCESS,
            )


def _form_field(exc: WaypostError, form) -> str | None:
    """The form field a service's refusal is about (its ``details``' field, or the audience
    for an audience error), else None: shown above the form."""
    for detail in exc.details:
        field = str(detail.get("field", "")).split("[")[0]
        if field in form.fields:
            return field
    return "audience" if exc.code.startswith("audience") else None
