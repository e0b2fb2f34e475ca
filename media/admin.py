"""Admin for media files: what each is, which number it is uploaded through, and whether its
provider id is still good — read-only (files come in through ``POST /api/v1/media``).

The list never reads a file's bytes; a file's page shows an image as a preview. Deleting a
file (Django's *delete* permission) refuses the messages still naming it when they come to be
sent (``media_not_found``; within a minute: ``media.services.REMEMBER_SECONDS``). Scoped to
the user's tenants like every tenant's object (``tenants.scoping``).
"""

from __future__ import annotations

import base64

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from media.models import MediaAsset
from media.services import refresh_margin
from tenants.scoping import TenantScopedAdmin

_BADGE = (
    '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-size:11px;'
    'font-weight:600;white-space:nowrap" title="{}">{}</span>'
)
PREVIEWED = {"image/jpeg", "image/png"}


def expiry(asset: MediaAsset, now=None) -> tuple[str, str, str]:
    """(label, colour, explanation) of the provider id's state."""
    now = now or timezone.now()
    if not asset.provider_media_id or asset.expires_at is None:
        return (
            "not uploaded",
            "#6c757d",
            "No provider id: the next send naming the file uploads it first.",
        )
    if asset.expires_at <= now:
        return (
            "expired",
            "#b02a37",
            "The provider has forgotten this id: the next send naming the file uploads it again.",
        )
    left = asset.expires_at - now
    if left <= refresh_margin():
        return (
            "renews at next send",
            "#946c00",
            "The id expires within WAYPOST_MEDIA_REFRESH_MARGIN: the next send naming the file "
            "uploads it again first.",
        )
    days = left.days
    return (
        f"valid · {days} d" if days else "valid · < 1 d",
        "#1e7e34",
        f"The provider keeps this id until {timezone.localtime(asset.expires_at):%Y-%m-%d %H:%M}.",
    )


@admin.register(MediaAsset)
class MediaAssetAdmin(TenantScopedAdmin):
    list_display = (
        "filename",
        "tenant",
        "sender",
        "kind_shown",
        "size_shown",
        "expiry_badge",
        "created_at",
    )
    list_filter = ("tenant", "sender", "content_type")
    search_fields = ("filename", "=sha256", "=provider_media_id", "=id")
    search_help_text = "A file name, its id, SHA-256 or provider media id."
    list_select_related = ("tenant", "sender")
    ordering = ("-created_at",)
    fieldsets = [
        (None, {"fields": ("id", "tenant", "sender", "filename", "content_type", "size_shown")}),
        (
            "Provider",
            {"fields": ("expiry_badge", "provider_media_id", "uploaded_at", "expires_at")},
        ),
        ("Upload error", {"fields": ("upload_error",)}),
        (None, {"fields": ("sha256", "created_at", "preview")}),
    ]
    readonly_fields = (
        "id",
        "tenant",
        "sender",
        "filename",
        "content_type",
        "size_shown",
        "expiry_badge",
        "provider_media_id",
        "uploaded_at",
        "expires_at",
        "upload_error",
        "sha256",
        "created_at",
        "preview",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).defer("file")

    def has_add_permission(self, request, obj=None):
        return False  # files come in through POST /api/v1/media: checked and uploaded

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="kind", ordering="content_type")
    def kind_shown(self, obj):
        return obj.kind or obj.content_type

    @admin.display(description="size", ordering="size")
    def size_shown(self, obj):
        size = obj.size
        for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
            if size >= scale:
                return f"{size / scale:.1f} {unit}"
        return f"{size} B"

    @admin.display(description="provider id", ordering="expires_at")
    def expiry_badge(self, obj):
        label, colour, explanation = expiry(obj)
        return format_html(_BADGE, colour, explanation, label)

    @admin.display(description="preview")
    def preview(self, obj):
        if obj.content_type not in PREVIEWED:
            return "—"
        data = base64.b64encode(bytes(obj.file)).decode()
        return format_html(
            '<img src="data:{};base64,{}" alt="" style="max-width:320px;max-height:320px">',
            obj.content_type,
            data,
        )
