"""A tenant's message templates, with Meta's components stored exactly as Meta's JSON.

``status``, ``provider_template_id``, ``rejection_reason``, ``quality`` and ``last_synced_at``
are managed by the provider (create response, status webhooks, sync) and read-only to users.
A template can be used to send only while its status is sendable (``TemplateStatus.SENDABLE``).
"""

import uuid

from django.db import models

from templates_registry.rules.limits import TemplateCategory
from tenants.models import SenderNumber, Tenant

#: For the ``category`` field: the rules' categories, labelled as Django labels them.
CATEGORY_CHOICES = [(category.value, category.value.title()) for category in TemplateCategory]


class TemplateStatus(models.TextChoices):
    """Meta's vocabulary (docs/meta-api.md §4.8, §5.1)."""

    APPROVED = "APPROVED"
    PENDING = "PENDING"
    REJECTED = "REJECTED"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"
    IN_APPEAL = "IN_APPEAL"
    FLAGGED = "FLAGGED"
    LOCKED = "LOCKED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    ARCHIVED = "ARCHIVED"
    PENDING_DELETION = "PENDING_DELETION"
    DELETED = "DELETED"


# The one definition of what may be sent, used by the API (refuse at once) and the pipeline
# (re-checked before each submit). FLAGGED: low quality, at risk of a pause, still sendable.
TemplateStatus.SENDABLE = frozenset({TemplateStatus.APPROVED, TemplateStatus.FLAGGED})
# Not sendable now, but may become so (review, appeal, end of a pause): messages wait.
TemplateStatus.WAITING = frozenset(
    {
        TemplateStatus.PAUSED,
        TemplateStatus.PENDING,
        TemplateStatus.IN_APPEAL,
        TemplateStatus.LOCKED,
        TemplateStatus.LIMIT_EXCEEDED,
    }
)


class ParameterFormat(models.TextChoices):
    POSITIONAL = "POSITIONAL", "Positional ({{1}}, {{2}}, …)"
    NAMED = "NAMED", "Named ({{first_name}}, …)"


class TemplateQuality(models.TextChoices):
    GREEN = "GREEN"
    YELLOW = "YELLOW"
    RED = "RED"
    UNKNOWN = "UNKNOWN"


class MessageTemplate(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="templates")
    sender = models.ForeignKey(
        SenderNumber,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="templates",
        help_text="The number whose WABA the template was submitted to.",
    )
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    category = models.CharField(max_length=16, choices=CATEGORY_CHOICES)
    parameter_format = models.CharField(
        max_length=16, choices=ParameterFormat.choices, default=ParameterFormat.POSITIONAL
    )
    components = models.JSONField(default=list, help_text="Meta's component JSON, verbatim.")
    # An impending recategorization the provider announced (template_category_update).
    pending_category = models.CharField(max_length=16, blank=True)
    pending_category_at = models.DateTimeField(null=True, blank=True)
    # Provider-managed.
    status = models.CharField(
        max_length=20, choices=TemplateStatus.choices, default=TemplateStatus.PENDING
    )
    provider_template_id = models.CharField(max_length=64, blank=True)
    rejection_reason = models.TextField(blank=True)
    quality = models.CharField(
        max_length=8, choices=TemplateQuality.choices, default=TemplateQuality.UNKNOWN
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    submission_error = models.CharField(
        max_length=500,
        blank=True,
        help_text="Why the last submission to the provider did not go through, if it did not.",
    )
    status_reason = models.CharField(
        max_length=255,
        blank=True,
        help_text="Why the status last changed, when Waypost changed it.",
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.CharField(
        max_length=150, blank=True, help_text="pipeline, provider, sync or the operator's name."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name", "language"], name="template_unique_per_tenant"
            )
        ]
        indexes = [
            # The operations page and the pipeline's template waits: a tenant's templates by
            # status.
            models.Index(fields=["tenant", "status"], name="template_tenant_status"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    @property
    def is_sendable(self) -> bool:
        return self.status in TemplateStatus.SENDABLE

    @property
    def needs_phone_number(self) -> bool:
        """Copy-code, one-tap and zero-tap authentication templates (an OTP button) go to
        phone numbers only: Meta refuses a BSUID recipient with 131062 (docs/meta-api.md
        §11.1)."""
        if self.category != TemplateCategory.AUTHENTICATION:
            return False
        return any(
            str(button.get("type", "")).upper() in ("OTP", "COPY_CODE")
            for component in self.components or []
            if str(component.get("type", "")).upper() == "BUTTONS"
            for button in component.get("buttons") or []
            if isinstance(button, dict)
        )

    def definition(self) -> dict:
        """The template in Meta's creation JSON, as the rules module reads it."""
        return {
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "parameter_format": self.parameter_format,
            "components": self.components,
        }
