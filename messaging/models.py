"""Messages and their append-only event ledger.

``Message.state`` is a projection of the message's ``MessageEvent`` rows (see
``messaging.states``); ``state_rank`` is the precedence of the event that set it, so every
state write is a conditional update that can only move a message forward.

``MessageEvent`` rows are never updated or deleted: a PostgreSQL (and SQLite) trigger refuses
both (migration 0002), and the admin offers neither. ``(message, dedupe_key)`` is unique, so
the same fact recorded twice — a redelivered task, a duplicated webhook — is one row.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F

from core.ids import uuid7
from core.logging import mask_phone
from messaging.states import EventSource, EventType, MessageState, StallReason
from templates_registry.models import MessageTemplate
from tenants.models import SenderNumber, Tenant
from whatsapp.errors import ErrorClass


class MessageKind(models.TextChoices):
    TEMPLATE = "template", "Template"
    TEXT = "text", "Free-form text"


class Message(models.Model):
    # UUIDv7: time-ordered, so a month of messages is one range of ids (the ledger's partitions)
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # No index of its own: every index below that a tenant's query uses starts with it.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="messages", db_index=False
    )
    sender = models.ForeignKey(SenderNumber, on_delete=models.PROTECT, related_name="messages")
    recipient = models.CharField(
        max_length=20, blank=True, help_text="E.164; empty when addressed by BSUID only."
    )
    recipient_user_id = models.CharField(
        "recipient BSUID",
        max_length=160,
        blank=True,
        help_text="The business-scoped user id, when the message was addressed by it (or the "
        "provider named it).",
    )
    # Not sent after this moment: it ends ``expired`` instead (an OTP an hour late is worse
    # than none). From the request's ``ttl_seconds``, else the category's default.
    expires_at = models.DateTimeField(null=True, blank=True)
    # What the message costs, as the provider counts it (the first status that carries it).
    pricing_model = models.CharField(max_length=16, blank=True)
    pricing_type = models.CharField(
        max_length=32, blank=True, help_text="regular (billable), free_customer_service, …"
    )
    pricing_category = models.CharField(max_length=32, blank=True)
    billable = models.BooleanField(null=True, blank=True)
    priced_at = models.DateTimeField(null=True, blank=True, help_text="When it was priced.")
    recipient_country = models.CharField(
        max_length=2, blank=True, help_text="ISO country of the recipient (pricing is by country)."
    )
    kind = models.CharField(
        max_length=8,
        default=MessageKind.TEMPLATE,
        choices=MessageKind.choices,
    )
    text_body = models.TextField(blank=True, help_text="Free-form text (inside the window).")
    # The template as it was at send time (the registry may change afterwards).
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.SET_NULL, null=True, related_name="messages"
    )
    template_name = models.CharField(max_length=512, blank=True)
    template_language = models.CharField(max_length=16, blank=True)
    template_category = models.CharField(max_length=16, blank=True)
    template_components = models.JSONField(default=list)
    parameters = models.JSONField(default=list, help_text="Send-time components, as sanitised.")
    # NULL until sent, not "": the unique constraint below lets any number of NULLs through.
    provider_message_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    idempotency_key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    metadata = models.JSONField(default=dict, blank=True)
    # A campaign's message (``campaigns``); referred to by name: campaigns sits above messaging.
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="messages",
        db_index=False,  # the partial index below
    )
    send_at = models.DateTimeField(
        null=True, blank=True, help_text="Not sent before this time (the request's send_at)."
    )
    send_window = models.JSONField(
        null=True,
        blank=True,
        help_text="Sent only inside these local hours and days, in the recipient's time zones: "
        '{"start", "end", "days", "zones"} (messaging.send.windows).',
    )
    # Projection of the ledger.
    state = models.CharField(
        max_length=16, choices=MessageState.choices, default=MessageState.QUEUED
    )
    state_rank = models.BigIntegerField(default=0)
    state_changed_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Submits so far.")
    round = models.PositiveSmallIntegerField(default=0, help_text="Current pipeline round.")
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="Not before this time (a retry, a cool-down, a limit)."
    )
    error_code = models.CharField(max_length=32, blank=True)
    error_title = models.CharField(max_length=255, blank=True)
    error_details = models.TextField(blank=True)
    error_class = models.CharField(max_length=20, choices=ErrorClass.choices, blank=True)
    stalled = models.BooleanField(default=False)
    stalled_reason = models.CharField(max_length=24, choices=StallReason.choices, blank=True)
    stalled_at = models.DateTimeField(null=True, blank=True)
    ledger_pruned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When its ledger was pruned for retention (the row keeps the summary).",
    )
    callbacks_sequence = models.PositiveIntegerField(
        default=0, help_text="How many callbacks this message caused (their `sequence`)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # No default ordering: every query that needs an order says which (a default would
        # add a sort to every count, exists and drain claim on the biggest table).
        permissions = [("view_recipient", "Can see recipients' phone numbers in full")]
        constraints = [
            # The API's idempotency: one message per key per tenant (messaging.send.intake).
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="message_idempotency_key_per_tenant"
            ),
            # A wamid names one message (a constraint, not unique=True: no LIKE index).
            models.UniqueConstraint(fields=["provider_message_id"], name="message_wamid_unique"),
            # A message has someone to go to.
            models.CheckConstraint(
                condition=~models.Q(recipient="", recipient_user_id=""),
                name="message_addressed",
            ),
            # A text message has a body and no template; a template message the reverse.
            models.CheckConstraint(
                condition=(
                    models.Q(kind=MessageKind.TEXT, template_name="") & ~models.Q(text_body="")
                )
                | (models.Q(kind=MessageKind.TEMPLATE, text_body="") & ~models.Q(template_name="")),
                name="message_kind_content",
            ),
        ]
        indexes = [
            # The API's list: a tenant's messages, newest first (cursor pagination).
            models.Index(fields=["tenant", "-created_at", "id"], name="message_tenant_newest"),
            # The sweep and the unknown-outcome policy: messages in a state, due by a time.
            models.Index(fields=["state", "next_attempt_at"], name="message_state_due"),
            # The API's and the admin's recipient filter; the opt-out and window checks.
            models.Index(fields=["tenant", "recipient"], name="message_tenant_recipient"),
            # The pricing report: a tenant's priced messages by day.
            models.Index(
                fields=["tenant", "priced_at"],
                condition=models.Q(priced_at__isnull=False),
                name="message_tenant_priced",
            ),
            # The reconciler's stall rules: messages in a state since before a threshold.
            models.Index(
                fields=["state", "state_changed_at"],
                condition=models.Q(stalled=False),
                name="message_unstalled_by_state",
            ),
            # The drain's claim: a tenant's due messages, its own before its campaigns', oldest
            # first (messaging.send.dispatch). DESC: PostgreSQL's DESC puts NULL (the tenant's
            # own) first, the order the claim asks for (SQLite refuses NULLS FIRST in an index).
            # Partial: only messages waiting to be sent, a small and short-lived set.
            models.Index(
                F("tenant"),
                F("campaign").desc(),
                F("created_at"),
                condition=models.Q(state__in=["queued", "retry_scheduled"]),
                name="message_waiting_by_age",
            ),
            # The messaging limit's count (messaging.selectors.portfolio_reach): a tenant's
            # submitted template messages by their last change, read by every campaign pass.
            models.Index(
                fields=["tenant", "state_changed_at"],
                condition=models.Q(kind="template", attempts__gt=0),
                name="message_reach",
            ),
            # A campaign's progress (counts by state) and its parked messages.
            models.Index(
                fields=["campaign", "state"],
                condition=models.Q(campaign__isnull=False),
                name="message_campaign_state",
            ),
            # The drain's wake-up: a tenant's earliest future attempt (retries, cool-downs).
            models.Index(
                fields=["tenant", "next_attempt_at"],
                condition=models.Q(state__in=["queued", "retry_scheduled"]),
                name="message_waiting_by_attempt",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.state})"


class MessageEvent(models.Model):
    # No index of its own: ``event_dedupe`` leads with the message (a message's events, the
    # cascade) — a second index on it cost ~100 bytes and an index write per event.
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    type = models.CharField(max_length=24, choices=EventType.choices)
    source = models.CharField(max_length=12, choices=EventSource.choices)
    # The pipeline round the event belongs to: 0 at creation, +1 each time the message
    # re-enters the pipeline (retry, cool-down, resend). Later rounds outrank earlier ones.
    round = models.PositiveSmallIntegerField(default=0)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    detail = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "dedupe_key"], name="event_dedupe"),
        ]

    def __str__(self) -> str:
        return f"{self.type}#{self.round} ({self.source})"


class Suppression(models.Model):
    """A recipient the tenant must not message (opt-out); the pipeline refuses them."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="suppressions")
    recipient = models.CharField(max_length=20, blank=True, help_text="E.164")
    user_id = models.CharField("BSUID", max_length=160, blank=True)
    reason = models.CharField(max_length=100, default="opt_out")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "recipient"],
                condition=~models.Q(recipient=""),
                name="suppression_unique",
            ),
            models.UniqueConstraint(
                fields=["tenant", "user_id"],
                condition=~models.Q(user_id=""),
                name="suppression_user_id_unique",
            ),
            models.CheckConstraint(
                condition=~models.Q(recipient="", user_id=""), name="suppression_identified"
            ),
        ]

    def __str__(self) -> str:  # page titles, history, logs: the number masked
        return f"{self.tenant}:{mask_phone(self.recipient) or self.user_id}"


class OrphanStatus(models.Model):
    """A status webhook for a message we cannot match yet (it beat the send response and
    carried no usable ``biz_opaque_callback_data``). Parked, never dropped; re-applied when a
    message receives that wamid, and by the reconciler."""

    sender = models.ForeignKey(SenderNumber, on_delete=models.CASCADE, null=True)
    wamid = models.CharField(max_length=128, db_index=True)
    report = models.JSONField()
    dedupe_key = models.CharField(max_length=220, unique=True)
    received_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(
        null=True, blank=True, help_text="Given up: no message claimed it within the bound."
    )

    def __str__(self) -> str:
        return f"orphan {self.report.get('status')} for {self.wamid}"


class Contact(models.Model):
    """A WhatsApp user of a tenant, known by a phone number (``wa_id``, digits), a
    business-scoped user id (``user_id``, a BSUID such as ``US.13491208655302741918``), or both
    — merged into one contact as soon as a webhook shows both (``messaging.track.contacts``). A
    BSUID is scoped to a business and changes when the user changes number; a tenant is one
    business here. ``last_inbound_at`` opens the 24-hour customer-service window
    (docs/meta-api.md §6); ``marketing_stopped_at`` is the user's "stop marketing messages"
    (§11.2)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="contacts")
    wa_id = models.CharField(max_length=20, blank=True)
    user_id = models.CharField("BSUID", max_length=160, blank=True)
    parent_user_id = models.CharField("parent BSUID", max_length=160, blank=True)
    username = models.CharField(max_length=100, blank=True)
    profile_name = models.CharField(max_length=200, blank=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    marketing_stopped_at = models.DateTimeField(
        null=True, blank=True, help_text="The user stopped marketing messages (until resumed)."
    )
    marketing_preference_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last stop/resume happened (orders them)."
    )
    created_at = models.DateTimeField(auto_now_add=True, null=True)

    class Meta:
        constraints = [
            # One contact per identifier per tenant (messaging.track.contacts merges the two).
            models.UniqueConstraint(
                fields=["tenant", "wa_id"], condition=~models.Q(wa_id=""), name="contact_once"
            ),
            models.UniqueConstraint(
                fields=["tenant", "user_id"],
                condition=~models.Q(user_id=""),
                name="contact_user_id_once",
            ),
            models.CheckConstraint(
                condition=~models.Q(wa_id="", user_id=""), name="contact_identified"
            ),
        ]

    def __str__(self) -> str:  # page titles, history, logs: the number masked
        return f"{self.tenant}:{mask_phone(self.wa_id) or self.user_id}"


class InboundMessage(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="inbound")
    sender = models.ForeignKey(SenderNumber, on_delete=models.SET_NULL, null=True)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="messages")
    wamid = models.CharField(max_length=128, unique=True)
    type = models.CharField(max_length=20)
    text = models.TextField(blank=True)
    payload = models.CharField(max_length=256, blank=True, help_text="Button / reply id.")
    context_wamid = models.CharField(max_length=128, blank=True)
    received_at = models.DateTimeField(help_text="Meta's timestamp.")
    raw = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # The inbound API's list: a tenant's messages, newest first.
            models.Index(fields=["tenant", "-received_at", "-id"], name="inbound_tenant_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.type} from {self.contact}"


class SubmitBatch(models.Model):
    """A claimed batch whose submit step began: the one row that lets a batch's requests leave
    once (``messaging.send.pipeline``). The submit step inserts it before any request; a
    redelivered step finds it and sends nothing; the stuck-submit rule inserts it to retire a
    batch whose submit step never began, then sends its messages again — safely, as nothing of
    it left. Durable on purpose: a Redis that restarted empty must not forget a started batch."""

    id = models.UUIDField(primary_key=True, editable=False)
    started_at = models.DateTimeField(auto_now_add=True)
    started_by = models.CharField(max_length=12, help_text="submit, or reconciler")

    def __str__(self) -> str:
        return f"batch {self.id} ({self.started_by})"
