"""Raw webhook deliveries, stored before they are answered, processed after.

A delivery is stored exactly as received (body bytes, the headers that matter, when) the moment
its signature checks out, and answered 200 at once; parsing and applying happen later, in
batches (``webhooks.services.deliveries_process``). ``(provider, body_sha256)`` is unique, so
the same body delivered twice is stored — and processed — once. On PostgreSQL the table is
partitioned by the month of ``received_at`` (``core.partitions``; retention drops whole months)
and the hash is unique within each month: a resend across a month's end (Meta retries for up
to seven days) is stored again, and what it carries is recognised downstream (the ledger's
dedupe keys, the inbound wamid). Calls that fail the signature check are kept, capped, in
``RejectedWebhook`` for security review.
"""

from django.db import models

from tenants.models import SenderNumber
from whatsapp import Provider


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSED = "processed"
    PARTIAL = "partial", "Processed, but some items were not understood (replayable)"
    INVALID = "invalid", "Invalid (signed, but not JSON or not Meta's envelope)"
    FAILED = "failed", "Failed (a processing error; replayable)"


class WebhookDelivery(models.Model):
    provider = models.CharField(max_length=16, default=Provider.META)
    sender = models.ForeignKey(
        SenderNumber,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        help_text="For per-sender routes (360dialog).",
    )
    received_at = models.DateTimeField(db_index=True)
    body = models.BinaryField()
    body_sha256 = models.CharField(max_length=64)
    headers = models.JSONField(default=dict)
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    events = models.PositiveIntegerField(default=0, help_text="Events parsed from it.")
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["provider", "body_sha256"], name="delivery_body_once"),
        ]
        indexes = [
            # The processor's claim: pending deliveries, oldest first (webhooks.services).
            models.Index(fields=["status", "id"], name="delivery_status_claim"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} delivery {self.pk} ({self.status})"


class RejectedWebhook(models.Model):
    """A call that failed authentication: kept (capped) for security review, never processed.

    Redacted when recorded (``webhooks.services.rejected_record``): a route's token is never
    stored, and phone numbers in the headers and body excerpt are masked. Only superusers and
    ``tenants.all_tenants`` holders see these rows (``webhooks.admin``)."""

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    path = models.CharField(
        max_length=200, help_text="The route called; a route's token cut to its first 4 characters."
    )
    reason = models.CharField(max_length=40)
    remote_addr = models.CharField(max_length=64, blank=True)
    headers = models.JSONField(default=dict, help_text="The headers kept, phone numbers masked.")
    body_size = models.PositiveIntegerField(default=0)
    body_prefix = models.TextField(
        blank=True, help_text="The body's first 512 characters, phone numbers masked."
    )

    def __str__(self) -> str:
        return f"{self.reason} at {self.received_at:%Y-%m-%d %H:%M:%S}"
