"""A file for template headers, kept here and uploaded to the provider through one sender."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q

from tenants.models import SenderNumber, Tenant
from whatsapp.media import header_media_for


class MediaAsset(models.Model):
    """One file, uploaded through one ``sender``: a provider's media id belongs to the number
    (its app) it was uploaded through, and lasts 30 days (``whatsapp.media``). The bytes are
    kept here, so the file can be uploaded again when its id would expire before a send.

    One per (tenant, sender, file content): the same file posted twice is the same asset.
    ``provider_media_id``, ``uploaded_at`` and ``expires_at`` are set together by an upload
    (never one without the others)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="media")
    sender = models.ForeignKey(
        SenderNumber,
        on_delete=models.CASCADE,
        related_name="media",
        help_text="The number the file is uploaded through (its media id is that number's).",
    )
    file = models.BinaryField(editable=False)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    sha256 = models.CharField("SHA-256", max_length=64)
    provider_media_id = models.CharField(
        "provider media id", max_length=128, blank=True, help_text="The provider's id for it."
    )
    uploaded_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="When the provider forgets the media id (30 days)."
    )
    upload_error = models.CharField(
        max_length=500, blank=True, help_text="Why the last upload to the provider failed."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "media file"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "sender", "sha256"], name="media_one_per_sender_and_content"
            ),
            models.CheckConstraint(
                condition=(
                    Q(provider_media_id="", uploaded_at__isnull=True, expires_at__isnull=True)
                    | (
                        ~Q(provider_media_id="")
                        & Q(uploaded_at__isnull=False, expires_at__isnull=False)
                    )
                ),
                name="media_uploaded_with_its_id_and_expiry",
            ),
        ]
        indexes = [
            # The admin's list and a tenant's newest files.
            models.Index(fields=["tenant", "-created_at"], name="media_tenant_newest"),
        ]

    def __str__(self) -> str:
        return self.filename

    @property
    def kind(self) -> str:
        """The header it fits: ``image``, ``video`` or ``document`` ("" for none)."""
        media = header_media_for(self.content_type)
        return media.parameter_type if media else ""

    def usable_until(self, margin: timedelta) -> datetime | None:
        """The last moment a send may name its provider id without uploading it again: its
        expiry less ``margin``; None when it has none."""
        if not self.provider_media_id or self.expires_at is None:
            return None
        return self.expires_at - margin
