"""A campaign and its audience (the design is ``campaigns/__init__.py``)."""

from __future__ import annotations

import uuid

from django.db import models

from core.logging import mask_phone
from templates_registry.models import MessageTemplate
from tenants.models import SenderNumber, Tenant


class CampaignState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


# Where a campaign may go from each state (``campaigns.services`` refuses anything else).
TRANSITIONS: dict[str, set[str]] = {
    CampaignState.DRAFT: {CampaignState.SCHEDULED, CampaignState.RUNNING, CampaignState.CANCELLED},
    CampaignState.SCHEDULED: {CampaignState.RUNNING, CampaignState.PAUSED, CampaignState.CANCELLED},
    CampaignState.RUNNING: {
        CampaignState.PAUSED,
        CampaignState.COMPLETED,
        CampaignState.CANCELLED,
    },
    CampaignState.PAUSED: {
        CampaignState.RUNNING,
        CampaignState.SCHEDULED,
        CampaignState.CANCELLED,
    },
    CampaignState.COMPLETED: set(),
    CampaignState.CANCELLED: set(),
}
FINISHED = {CampaignState.COMPLETED, CampaignState.CANCELLED}


class PreflightStatus(models.TextChoices):
    PASSED = "passed", "Passed: every row is valid"
    FAILED = "failed", "Failed: some rows are invalid"


class HeldReason(models.TextChoices):
    MESSAGING_LIMIT = "messaging_limit", "Held at the business portfolio's messaging limit"
    OUTSIDE_WINDOW = "outside_window", "Waiting for the send window to open"
    SENDER_INACTIVE = "sender_inactive", "The sender is blocked or disabled"
    TEMPLATE_WAITING = "template_waiting", "The template is paused or in review at Meta"


class Campaign(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=200)
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, related_name="campaigns"
    )
    sender = models.ForeignKey(SenderNumber, on_delete=models.PROTECT, related_name="campaigns")
    idempotency_key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(
        max_length=12, choices=CampaignState.choices, default=CampaignState.DRAFT
    )
    state_changed_at = models.DateTimeField()
    state_reason = models.CharField(
        max_length=255, blank=True, help_text="Why it was last paused, resumed or cancelled."
    )
    state_changed_by = models.CharField(
        max_length=150, blank=True, help_text="api, admin:<user>, or waypost (automatic)."
    )
    # Values every row gets unless its own column says otherwise (a header image, say).
    defaults = models.JSONField(default=dict, blank=True)
    # Schedule and pace.
    send_at = models.DateTimeField(null=True, blank=True, help_text="Not sent before this time.")
    window_start = models.TimeField(null=True, blank=True, help_text="Local time, inclusive.")
    window_end = models.TimeField(null=True, blank=True, help_text="Local time, exclusive.")
    window_days = models.CharField(
        max_length=7,
        blank=True,
        help_text="ISO weekdays the window is open (1 = Monday … 7 = Sunday); empty: every day.",
    )
    messages_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="The campaign's own cap (else a share of the sender's)."
    )
    ttl_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A row not sent this long after the campaign starts ends expired.",
    )
    # The audience and its preflight.
    rows_total = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    preflight_status = models.CharField(max_length=8, choices=PreflightStatus.choices, blank=True)
    preflight = models.JSONField(default=dict, blank=True, help_text="The preflight report.")
    skip_invalid = models.BooleanField(default=False)
    # Progress (the feeder's).
    rows_released = models.PositiveIntegerField(default=0)
    held_reason = models.CharField(max_length=20, choices=HeldReason.choices, blank=True)
    held_since = models.DateTimeField(null=True, blank=True)
    next_pass_at = models.DateTimeField(
        null=True, blank=True, help_text="When the feeder looks at it next."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="campaign_idempotency_key_per_tenant"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="campaign_tenant_newest"),
            # The safety net: campaigns whose next pass is overdue.
            models.Index(
                fields=["next_pass_at"],
                condition=models.Q(state__in=["scheduled", "running"]),
                name="campaign_next_pass",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"


class RowOutcome(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    INVALID = "invalid", "Invalid (preflight)"
    SKIPPED = "skipped", "Skipped (invalid, or the campaign was cancelled)"
    EXPIRED = "expired", "Expired before it could be sent"
    FAILED = "failed", "Refused when it was released"
    RELEASED = "released", "Released as a message"


class CampaignRow(models.Model):
    """One recipient of a campaign, as imported: its variables are frozen here."""

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rows")
    number = models.PositiveIntegerField(help_text="Its row in the audience, from 1.")
    recipient = models.CharField(max_length=20, blank=True, help_text="E.164")
    recipient_user_id = models.CharField("recipient BSUID", max_length=160, blank=True)
    # What the row said, as given (for the report) when it could not be read.
    raw_recipient = models.CharField(max_length=200, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    time_zones = models.CharField(
        max_length=200,
        blank=True,
        help_text="The recipient's possible time zones (comma-separated); the window must be "
        "open in every one.",
    )
    outcome = models.CharField(
        max_length=10, choices=RowOutcome.choices, default=RowOutcome.PENDING
    )
    error_code = models.CharField(max_length=48, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    message_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "number"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="campaign_row_once"),
        ]
        indexes = [
            # The feeder: a campaign's pending rows by time zone, in audience order.
            models.Index(
                fields=["campaign", "time_zones", "number"],
                condition=models.Q(outcome="pending"),
                name="campaign_row_pending",
            ),
            # The report: a campaign's invalid rows.
            models.Index(
                fields=["campaign", "number"],
                condition=models.Q(outcome__in=["invalid", "skipped", "failed"]),
                name="campaign_row_invalid",
            ),
        ]

    def __str__(self) -> str:
        return f"row {self.number}: {mask_phone(self.recipient) or self.recipient_user_id}"
