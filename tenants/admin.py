"""Admin for business users: tenants, their sender numbers and API keys.

Secrets never appear here: senders show only the *name* of their credential variable, and an
API key's secret is displayed once, in the confirmation message right after it is created.

What a sender *is* — its provider, Meta's ids and the variable its credential is read from —
only a superuser sets or changes (the tenant's own provisioning, ``create_tenant``, is the
other way): for other staff those fields, and the sender's tenant, are read-only, on the
sender's page and in the tenant's inline alike, so a value posted for them is ignored. Adding
a sender is therefore a superuser's job too. Even a superuser can only name a variable
reserved for the sender's tenant (``SenderNumber.clean``).

Permissions: every action declares the permission it needs (``allowed_permissions``); here
it is the model's *change* permission (activating a tenant, reactivating a sender and revoking
a key are changes of that object). A user without it does not see the action, and a forged
POST of it does nothing.
"""

import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe

from tenants.limits import limit_label, parse_limit
from tenants.models import (
    ApiKey,
    HealthSource,
    PortfolioLimit,
    QualityRating,
    SenderHealthEvent,
    SenderNumber,
    SenderStatus,
    StaffScope,
    Tenant,
)
from tenants.scoping import TenantScopedAdmin
from tenants.selectors import portfolio_limit, sender_health_history
from tenants.services import (
    api_key_create,
    api_key_revoke,
    portfolio_limit_learn,
    sender_set_status,
    tenant_set_active,
)

STATUS_FIELDS = ("status", "status_reason", "status_changed_at", "status_changed_by")
STATUS_COLOURS = {
    SenderStatus.ACTIVE: "#1e7e34",
    SenderStatus.BLOCKED: "#b02a37",
    SenderStatus.DISABLED: "#6c757d",
}
# Meta's quality rating, as the provider reports it: learned, never typed in.
HEALTH_FIELDS = ("quality_rating", "health_checked_at")
QUALITY_COLOURS = {
    QualityRating.GREEN: "#1e7e34",
    QualityRating.YELLOW: "#b8860b",
    QualityRating.RED: "#b02a37",
    QualityRating.UNKNOWN: "#6c757d",
}


def quality_badge(rating: str):
    """A sender's quality rating as a coloured badge ("—" when never told)."""
    if not rating:
        return "—"
    return format_html(
        '<span class="quality-badge" style="background:{};color:#fff;padding:2px 8px;'
        'border-radius:10px;font-size:11px;font-weight:600;white-space:nowrap">{}</span>',
        QUALITY_COLOURS.get(rating, "#555"),
        QualityRating(rating).label if rating in QualityRating.values else rating,
    )


def code_spans(text: str) -> str:
    """A help text written with Markdown's inline code (`` `manage.py retention` ``) as the
    admin shows it: in ``<code>``, never with literal backticks. The rest is escaped."""
    return mark_safe(re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(str(text))))  # noqa: S308


def help_texts_shown(model) -> dict[str, str]:
    """The help texts of ``model``'s fields that use inline code, for a ``ModelForm``'s
    ``help_texts`` — which the admin shows for editable and read-only fields alike."""
    return {
        field.name: code_spans(field.help_text)
        for field in model._meta.get_fields()
        if "`" in str(getattr(field, "help_text", ""))
    }


# Only a superuser points a sender at a provider, a number, a WABA and a credential.
IDENTITY_FIELDS = ("provider", "phone_number_id", "waba_id", "credentials_env")


class SenderNumberForm(forms.ModelForm):
    """The sender form. ``SenderNumber.clean`` may object to a field this user sees read-only
    (a sender saved before the rules): the objection is shown above the form, naming the
    field, instead of Django failing on a field the form does not have."""

    def add_error(self, field, error):
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            for name, errors in error.error_dict.items():
                if name == NON_FIELD_ERRORS or name in self.fields:
                    super().add_error(name, errors)
                else:
                    label = SenderNumber._meta.get_field(name).verbose_name
                    super().add_error(
                        None, [f"{label}: {text}" for e in errors for text in e.messages]
                    )
            return
        super().add_error(field, error)


class SenderNumberInline(admin.TabularInline):
    model = SenderNumber
    form = SenderNumberForm
    extra = 0
    fields = (
        "provider",
        "phone_number_id",
        "waba_id",
        "display_phone_number",
        "credentials_env",
        "business_id",
        "messages_per_second",
        *STATUS_FIELDS,
        "quality_rating",
    )
    # A status changes through the senders' actions, which record who and why; the quality is
    # the provider's.
    readonly_fields = (*STATUS_FIELDS, "quality_rating")

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return self.readonly_fields
        return (*IDENTITY_FIELDS, *self.readonly_fields)

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_add_permission(request, obj)


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_path = "pk"

    list_display = ("slug", "name", "active", "param_policy", "created_at")
    list_filter = ("active", "param_policy", "dedicated_queue")
    search_fields = ("slug", "name")
    inlines = [SenderNumberInline]
    readonly_fields = ("active",)
    actions = ["activate", "deactivate"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs.setdefault("help_texts", help_texts_shown(Tenant))
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # The slug names the tenant's reserved credential variables (and its own queue, if it
        # has one); a queue of its own is the deployment's to give (every worker consumes it).
        if not request.user.is_superuser:
            return (
                ("slug", "dedicated_queue", *self.readonly_fields)
                if obj
                else ("dedicated_queue", *self.readonly_fields)
            )
        return self.readonly_fields

    @admin.action(
        description="Activate (their queued messages go at once)", permissions=("change",)
    )
    def activate(self, request, queryset):
        for tenant in queryset:
            tenant_set_active(tenant=tenant, active=True)
        self.message_user(request, f"Activated {queryset.count()} tenant(s).")

    @admin.action(
        description="Deactivate (stop sending; messages stay queued)", permissions=("change",)
    )
    def deactivate(self, request, queryset):
        for tenant in queryset:
            tenant_set_active(tenant=tenant, active=False)
        self.message_user(request, f"Deactivated {queryset.count()} tenant(s).")


@admin.register(SenderNumber)
class SenderNumberAdmin(TenantScopedAdmin):
    """Senders, with their health: the quality rating as a badge, the portfolio's messaging
    limit, and the health history (what changed, when, from which source) on each sender's
    page — the provider's facts, read-only."""

    list_display = (
        "phone_number_id",
        "tenant",
        "status_badge",
        "quality",
        "display_phone_number",
        "portfolio",
        "messages_per_second",
    )
    list_filter = ("provider", "status", "quality_rating")
    search_fields = (
        "phone_number_id",
        "waba_id",
        "business_id",
        "display_phone_number",
        "tenant__slug",
    )
    list_select_related = ("tenant",)
    form = SenderNumberForm
    readonly_fields = (*STATUS_FIELDS, *HEALTH_FIELDS, "messaging_limit", "health_history")
    actions = ["reactivate", "disable"]

    @admin.display(description="quality", ordering="quality_rating")
    def quality(self, obj):
        return quality_badge(obj.quality_rating)

    @admin.display(description="portfolio", ordering="business_id")
    def portfolio(self, obj):
        return obj.business_id or "(the tenant's)"

    @admin.display(description="portfolio messaging limit")
    def messaging_limit(self, obj):
        if obj.pk is None:
            return "—"
        limit = portfolio_limit(tenant=obj.tenant, business_id=obj.business_id)
        return f"{limit_label(limit)} unique users per 24 hours, shared by the portfolio's senders"

    @admin.display(description="health history")
    def health_history(self, obj):
        """The newest 50 events: the sender's own, and its portfolio's limit changes."""
        events = list(sender_health_history(sender=obj)) if obj.pk else []
        if not events:
            return "Nothing learned yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{e.occurred_at:%Y-%m-%d %H:%M:%S}",
                    e.get_kind_display(),
                    f"{e.previous} → {e.value}" if e.previous else e.value,
                    e.get_source_display(),
                    e.detail.get("description") or e.detail.get("event") or "",
                )
                for e in events
            ),
        )
        return format_html(
            '<table class="health-history"><thead><tr><th>when (UTC)</th><th>what</th>'
            "<th>change</th><th>source</th><th>detail</th></tr></thead><tbody>{}</tbody>"
            "</table>",
            rows,
        )

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return self.readonly_fields
        return ("tenant", *IDENTITY_FIELDS, *self.readonly_fields)

    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)

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

    @admin.action(
        description="Reactivate (its queued messages go at once)", permissions=("change",)
    )
    def reactivate(self, request, queryset):
        self._set_status(request, queryset, SenderStatus.ACTIVE, "reactivated")

    @admin.action(
        description="Disable (stop sending from it; messages stay queued)",
        permissions=("change",),
    )
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


class PortfolioLimitForm(forms.ModelForm):
    """An operator's word for a portfolio's limit, in either of Meta's forms."""

    tier = forms.CharField(
        label="messaging limit",
        max_length=32,
        help_text="As Meta says it — TIER_250, TIER_2K, TIER_10K, TIER_100K, TIER_UNLIMITED — or "
        "a number (2000; -1 or unlimited). Meta's webhooks and the periodic poll overwrite it "
        "when they say otherwise.",
    )

    class Meta:
        model = PortfolioLimit
        fields = ("tenant", "business_id", "tier")

    def clean_tier(self):
        value = self.cleaned_data["tier"].strip()
        if parse_limit(value) is None:
            raise ValidationError("Not a messaging limit: TIER_2K, 2000, -1 or unlimited.")
        return value


@admin.register(PortfolioLimit)
class PortfolioLimitAdmin(TenantScopedAdmin):
    """The messaging limit of each business portfolio, as last learned (``tenants.limits``);
    an operator may set one Meta has not told (recorded with source *operator*)."""

    form = PortfolioLimitForm
    list_display = ("tenant", "business", "limit_shown", "tier", "source", "learned_at")
    list_filter = ("tenant", "source")
    list_select_related = ("tenant",)
    search_fields = ("business_id", "tenant__slug")
    readonly_fields = ("limit_shown", "source", "learned_at")

    def get_readonly_fields(self, request, obj=None):
        # A portfolio is named once: a change is of its limit.
        return (*self.readonly_fields, "tenant", "business_id") if obj else self.readonly_fields

    @admin.display(description="business portfolio", ordering="business_id")
    def business(self, obj):
        return obj.business_id or "(the tenant's)"

    @admin.display(description="limit (unique users / 24 h)", ordering="limit")
    def limit_shown(self, obj):
        return limit_label(obj.limit)

    def save_model(self, request, obj, form, change):
        portfolio_limit_learn(
            tenant=obj.tenant,
            business_id=obj.business_id,
            value=form.cleaned_data["tier"],
            source=HealthSource.OPERATOR,
        )
        # The admin goes on with ``obj`` (its history entry, the redirect): make it the row.
        saved = PortfolioLimit.objects.get(tenant=obj.tenant, business_id=obj.business_id)
        for field in PortfolioLimit._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding, obj._state.db = False, saved._state.db


@admin.register(SenderHealthEvent)
class SenderHealthEventAdmin(TenantScopedAdmin):
    """Every sender's health history, append-only: nobody adds, changes or deletes one."""

    list_display = ("occurred_at", "tenant", "sender", "business_id", "kind", "change", "source")
    list_filter = ("tenant", "kind", "source")
    list_select_related = ("tenant", "sender__tenant")
    search_fields = ("sender__phone_number_id", "business_id", "value")
    date_hierarchy = "occurred_at"

    @admin.display(description="change")
    def change(self, obj):
        return f"{obj.previous} → {obj.value}" if obj.previous else obj.value

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ApiKeyCreateForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("tenant", "name")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ("prefix", "tenant", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant",)
    list_select_related = ("tenant",)
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("tenant", "name")
        return ("tenant", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        return ("tenant", *self.readonly_fields) if obj else ()

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = api_key_create(tenant=form.cleaned_data["tenant"], name=form.cleaned_data["name"])
        form.instance = obj = issued.api_key
        self.message_user(
            request,
            f"API key created. Copy it now; it is not shown again: {issued.raw}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected API keys", permissions=("change",))
    def revoke(self, request, queryset):
        for api_key in queryset:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


@admin.register(StaffScope)
class StaffScopeAdmin(admin.ModelAdmin):
    """Which tenants a staff user sees (superusers and ``all_tenants`` see every one)."""

    list_display = ("user", "tenant_list")
    filter_horizontal = ("tenants",)

    def _superuser(self, request, obj=None) -> bool:
        return request.user.is_superuser

    has_module_permission = has_view_permission = has_change_permission = _superuser
    has_add_permission = has_delete_permission = _superuser

    @admin.display(description="tenants")
    def tenant_list(self, obj):
        return ", ".join(obj.tenants.values_list("slug", flat=True)) or "—"
