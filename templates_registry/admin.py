"""Admin for business users: create and edit templates, see each rule violation in place.

Provider-managed fields (status, provider id, rejection reason, quality, last sync) are
read-only; status is shown as a coloured badge.

Permissions: Django's own (view, add, change); the sync action changes templates and needs
*change* (``allowed_permissions``).
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils.html import format_html

from core.errors import WaypostError
from templates_registry.forms import MessageTemplateForm, pretty_json
from templates_registry.models import MessageTemplate, TemplateStatus
from templates_registry.services import template_create, template_update, templates_sync
from tenants.scoping import TenantScopedAdmin

BADGE_COLOURS = {
    TemplateStatus.APPROVED: "#1e7e34",
    TemplateStatus.PENDING: "#946c00",
    TemplateStatus.IN_APPEAL: "#946c00",
    TemplateStatus.REJECTED: "#b02a37",
    TemplateStatus.DISABLED: "#b02a37",
    TemplateStatus.PAUSED: "#c35a00",
    TemplateStatus.FLAGGED: "#c35a00",
}


@admin.register(MessageTemplate)
class MessageTemplateAdmin(TenantScopedAdmin):
    form = MessageTemplateForm
    list_display = (
        "name",
        "language",
        "tenant",
        "category",
        "status_badge",
        "quality",
        "updated_at",
    )
    list_filter = ("status", "category", "tenant")
    search_fields = ("name", "tenant__slug")
    list_select_related = ("tenant",)
    actions = ["sync_from_provider"]
    provider_fields = (
        "status_badge",
        "status_reason",
        "status_changed_at",
        "status_changed_by",
        "provider_template_id",
        "rejection_reason",
        "quality",
        "pending_category",
        "pending_category_at",
        "last_synced_at",
        "submission_error",
    )

    def get_fieldsets(self, request, obj=None):
        identity = ("tenant", "name", "language", "category", "parameter_format")
        content = ("header_format", "header_text", "body_text", "footer_text", "buttons")
        fieldsets = [(None, {"fields": identity}), ("Content", {"fields": content})]
        if obj is not None:
            fieldsets.append(("Provider", {"fields": self.provider_fields}))
            fieldsets.append(
                ("Meta JSON", {"fields": ("components_json",), "classes": ("collapse",)})
            )
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Meta does not rename templates or change their language: make a new one instead.
        return (
            "tenant",
            "name",
            "language",
            "parameter_format",
            *self.provider_fields,
            "components_json",
        )

    @admin.action(
        description="Sync these templates' tenants from their provider", permissions=("change",)
    )
    def sync_from_provider(self, request, queryset):
        for tenant in {t.tenant for t in queryset.select_related("tenant")}:
            try:
                counts = templates_sync(tenant=tenant)
            except WaypostError as exc:
                self.message_user(request, f"{tenant}: {exc.message}", messages.ERROR)
                continue
            self.message_user(
                request, f"{tenant}: {counts['created']} created, {counts['updated']} updated"
            )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        colour = BADGE_COLOURS.get(obj.status, "#555")
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
            'font-size:11px;font-weight:600">{}</span>',
            colour,
            obj.status,
        )

    @admin.display(description="components (Meta JSON)")
    def components_json(self, obj):
        return format_html("<pre>{}</pre>", pretty_json(obj.components))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A refusal by the provider while saving (an edit refused, an outage) is shown on the
        page, not as a server error; the admin's transaction has rolled back, nothing changed."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except WaypostError as exc:
            self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_form(self, request, form, change):
        """Persist through the services (they re-check the rules and submit the change to the
        provider), not ``form.save()``."""
        components = form.cleaned_data["components"]
        if change:
            template = MessageTemplate.objects.get(pk=form.instance.pk)  # as stored, not as edited
            template = template_update(
                template=template,
                category=form.cleaned_data["category"],
                components=components,
                by=str(request.user),
            )
            if template.status == TemplateStatus.PENDING:
                self.message_user(
                    request,
                    "The edit was submitted to the provider; the template is PENDING until "
                    "it is reviewed, and messages for it wait meanwhile.",
                    messages.WARNING,
                )
            return template
        return template_create(
            tenant=form.cleaned_data["tenant"],
            definition={**form.instance.definition(), "components": components},
        )

    def save_model(self, request, obj, form, change):
        """Already saved by ``save_form``."""

    def save_related(self, request, form, formsets, change):
        """A template has no related objects to save."""
