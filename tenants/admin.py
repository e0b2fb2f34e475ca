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
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from tenants.models import ApiKey, SenderNumber, SenderStatus, StaffScope, Tenant
from tenants.scoping import TenantScopedAdmin
from tenants.services import (
    api_key_create,
    api_key_revoke,
    sender_set_status,
    tenant_set_active,
)

STATUS_FIELDS = ("status", "status_reason", "status_changed_at", "status_changed_by")
STATUS_COLOURS = {
    SenderStatus.ACTIVE: "#1e7e34",
    SenderStatus.BLOCKED: "#b02a37",
    SenderStatus.DISABLED: "#6c757d",
}


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
        "messages_per_second",
        *STATUS_FIELDS,
    )
    # A status changes through the senders' actions, which record who and why.
    readonly_fields = STATUS_FIELDS

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
    list_filter = ("active", "param_policy")
    search_fields = ("slug", "name")
    inlines = [SenderNumberInline]
    readonly_fields = ("active",)
    actions = ["activate", "deactivate"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs.setdefault("help_texts", help_texts_shown(Tenant))
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # The slug names the tenant's queue and its reserved credential variables.
        if obj is not None and not request.user.is_superuser:
            return ("slug", *self.readonly_fields)
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
    form = SenderNumberForm
    readonly_fields = STATUS_FIELDS
    actions = ["reactivate", "disable"]

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
