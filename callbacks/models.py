"""Client callbacks: a tenant's endpoint, and an outbox of events with their attempts.

Like Saleor's webhook deliveries: an event row is written in the same transaction as the state
change that causes it (so nothing is announced that did not happen, and nothing that happened is
lost), then delivered by the deliverer process with every attempt recorded. The wire format is
Standard Webhooks (``callbacks.services`` says how).
"""

from __future__ import annotations

import uuid

from django.db import models

from tenants.models import Tenant


def url_shown(url: str) -> str:
    """The URL as records and screens may show it: without a user or password it carries
    (``https://user:secret@host/`` → ``https://host/``)."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}" if sep else url


class CallbackEndpoint(models.Model):
    """Where a tenant wants its events, which ones, and the secrets that sign them."""

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, related_name="callback_endpoint"
    )
    url = models.URLField(max_length=500, blank=True)
    event_types = models.JSONField(default=list, blank=True)
    # [{"secret": "whsec_…", "created_at": iso, "expires_at": iso or None}]; the newest first.
    # During a rotation the old secret signs too, until it expires.
    secrets = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="Consecutive failed attempts.")
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="The endpoint is backed off until then."
    )
    last_success_at = models.DateTimeField(null=True, blank=True)
    # The deliverer delivering this endpoint's events now, and until when (``WAYPOST_CALLBACK_
    # LEASE``): one deliverer of several at a time, so a tenant's events go out in order.
    leased_by = models.CharField(max_length=100, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:  # page titles and history: no credentials a URL may carry
        return f"{self.tenant.slug}: {url_shown(self.url) or '(no url)'}"


class CallbackStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead", "Dead-lettered (replayable)"


class CallbackEvent(models.Model):
    """One event for one tenant; ``webhook-id`` is ``msg_<id>``, the same on every attempt."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="callback_events")
    type = models.CharField(max_length=40)
    message_id = models.UUIDField(null=True, blank=True, db_index=True)
    sequence = models.PositiveIntegerField(default=0, help_text="Per message, from 1.")
    payload = models.JSONField(help_text='The body: {"type", "timestamp", "data"}.')
    status = models.CharField(
        max_length=12, choices=CallbackStatus.choices, default=CallbackStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    retry_until = models.DateTimeField(help_text="Dead-lettered if not delivered by then.")
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The deliverer: a tenant's pending events, due first, in order.
            models.Index(
                fields=["tenant", "next_attempt_at", "created_at"],
                condition=models.Q(status="pending"),
                name="callback_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.status})"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"


class CallbackAttempt(models.Model):
    event = models.ForeignKey(CallbackEvent, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField(auto_now_add=True)
    url = models.CharField(max_length=500)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.status_code or self.error[:40]}"
