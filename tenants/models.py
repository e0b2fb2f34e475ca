"""Tenants, their WhatsApp sender numbers and their API keys.

Everything a tenant owns hangs off ``Tenant``; no model elsewhere exists without one. This app
knows nothing of templates or messages (dependencies point towards it, never away).

Credentials: a ``SenderNumber`` stores the *name of an environment variable* holding its access
token (Meta) or API key (360dialog), never the secret itself. See ``SenderNumber.credential``
and ``docs/operations/tenants.md`` for why. The name must be one reserved for the sender's tenant
(``credential_env_allowed``): whoever may edit a sender can then point it at that tenant's
secrets only, never at another tenant's token or at the process's own settings.
"""

from __future__ import annotations

import os
import re
import secrets
import time
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from core.alerts import alert
from core.queues import queue_for
from whatsapp import PROVIDER_CHOICES, Provider, provider_class

slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$",
    "3-50 lowercase letters, digits or hyphens; not starting or ending with a hyphen.",
)
env_var_validator = RegexValidator(
    r"^[A-Z_][A-Z0-9_]*$", "An environment variable name: upper-case letters, digits, _."
)
# Meta's ids (phone number id, WABA id) are positive integers written in decimal. Anything else
# ("./<another id>", "123/..") would be resolved by the HTTP layer into another object's path,
# and a leading zero would be a second spelling of the same number.
meta_id_validator = RegexValidator(
    r"^[1-9][0-9]{0,31}\Z", "Digits only, 1 to 32 of them, no leading zero (a Meta id)."
)

# After a tenant's prefix: words of upper-case letters and digits joined by single underscores.
# No double underscore, so one tenant's names never start with another tenant's prefix
# (``WAYPOST_ACME__X__TOKEN`` would otherwise be both acme's and acme--x's).
_CREDENTIAL_NAME = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)*")


def validate_time_zone(name: str) -> None:
    """An IANA time zone name this Python knows (``Europe/Berlin``, ``UTC``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError(
            f"{name!r} is not a time zone: an IANA name such as Europe/Berlin or UTC.",
            code="time_zone",
        ) from None


def credential_env_prefix(tenant: Tenant) -> str:
    """The prefix of the environment variables reserved for ``tenant``'s credentials:
    ``WAYPOST_<SLUG>__`` with the slug upper-cased and ``-`` written ``_`` (``acme-eu`` →
    ``WAYPOST_ACME_EU__``)."""
    return f"WAYPOST_{tenant.slug.upper().replace('-', '_')}__"


def credential_env_allowed(tenant: Tenant, name: str) -> bool:
    """Whether a sender of ``tenant`` may read its credential from the variable ``name``:
    ``credential_env_prefix(tenant)`` followed by ``[A-Z0-9]+(_[A-Z0-9]+)*``. Slugs are
    unique and have no ``_``, so each such name belongs to exactly one tenant, and none is one
    of the process's own settings (``SECRET_KEY``, ``DATABASE_URL``, ``PATH``: no setting's
    name has a double underscore)."""
    prefix = credential_env_prefix(tenant)
    return name.startswith(prefix) and _CREDENTIAL_NAME.fullmatch(name[len(prefix) :]) is not None


def credential_env_error(tenant: Tenant, name: str) -> str:
    """The message for a variable ``name`` outside ``tenant``'s reserved names."""
    prefix = credential_env_prefix(tenant)
    return (
        f"{name} is not reserved for tenant {tenant.slug}: its credential variables are named "
        f"{prefix}<NAME> (NAME: upper-case letters and digits in words joined by single "
        f"underscores, e.g. {prefix}ACCESS_TOKEN)."
    )


class ParamPolicy(models.TextChoices):
    """What a *formatting* violation in a text parameter gets (newline, tab, > 4 spaces)."""

    REJECT = "reject", "Reject the request (400 naming the parameter)"
    SANITIZE = "sanitize", "Sanitize (newlines/tabs to spaces, collapse runs) and record it"


class AmbiguousPolicy(models.TextChoices):
    """What happens to a message whose submit outcome stayed unknown past the grace period."""

    HOLD = "hold", "Hold for an operator (flagged as stalled)"
    RESEND = "resend", "Resend (may duplicate: Meta has no idempotency key)"


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    param_policy = models.CharField(
        "parameter formatting policy",
        max_length=16,
        choices=ParamPolicy.choices,
        default=ParamPolicy.REJECT,
        help_text="What a formatting violation in a text parameter gets: a newline, a tab, more "
        "than 4 spaces in a row.",
    )
    # Retry policy for errors worth retrying (docs/meta-api.md §2).
    max_attempts = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Submit attempts per message before it is dead-lettered.",
    )
    retry_window_seconds = models.PositiveIntegerField(
        default=3600, help_text="Give up retrying this long after the message was created."
    )
    ambiguous_policy = models.CharField(
        max_length=8,
        choices=AmbiguousPolicy.choices,
        default=AmbiguousPolicy.HOLD,
        help_text="What happens to a message whose submit outcome is still unknown after "
        "ambiguous_grace_seconds.",
    )
    ambiguous_grace_seconds = models.PositiveIntegerField(
        default=900,
        help_text="How long an unknown submit waits for a status webhook before the policy.",
    )
    # Meta's per-user marketing limit (131049) is a policy outcome, not a transport error.
    marketing_limit_retry = models.BooleanField(
        default=False,
        help_text="Retry a marketing message refused for the per-user marketing limit (131049) "
        "once, after 24 hours. Off: it fails with that reason.",
    )
    # Retention (messaging/track/retention.py): how long a settled message keeps its ledger.
    ledger_retention_days = models.PositiveIntegerField(
        default=90,
        help_text="Days a message's event ledger is kept after its last state change; then "
        "`manage.py retention` prunes (or archives) it and keeps the message's summary and "
        "final state. 0 keeps ledgers forever.",
    )
    api_requests_per_second = models.PositiveIntegerField(
        "API requests per second",
        default=300,
        help_text="The tenant's API calls allowed per second, a batch counting one per message, "
        "in bursts of up to one second's worth; over it the API answers 429 with Retry-After. "
        "0 = no limit.",
    )
    # Stall thresholds (operations/reconciler.py has the rules and Meta's quirks).
    stall_accepted_seconds = models.PositiveIntegerField(
        default=900,
        validators=[MinValueValidator(1)],
        help_text="An accepted message with no status webhook after this long is flagged stalled.",
    )
    stall_sent_seconds = models.PositiveIntegerField(
        default=900,
        validators=[MinValueValidator(1)],
        help_text="A sent message not delivered after this long is flagged stalled.",
    )
    opt_out_keywords = models.CharField(
        max_length=200,
        default="STOP",
        help_text="Comma-separated; an inbound message that is one of these opts the user out.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="The time zone of recipients known only by BSUID, for campaign send windows "
        "(an IANA name: Europe/Berlin, America/Sao_Paulo). A phone number's own zone wins.",
    )
    dedicated_queue = models.BooleanField(
        "queue of its own",
        default=False,
        help_text="Send this tenant's messages through a broker queue of its own (named "
        "tenant. and its slug) instead of the shared ones: a platform's largest customer, or a "
        "tenant to watch on its own in the broker. Every worker but the express ones consumes "
        "it. Turning it off leaves "
        "what is on that queue to the workers running now; restarted ones read it while it is "
        "not empty.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def queue_name(self) -> str:
        """The broker queue of this tenant's drains and small batches: its express lane, or
        its own queue (``core.queues``)."""
        return self._queue(bulk=False)

    @property
    def bulk_queue_name(self) -> str:
        """The broker queue of this tenant's backlog: the steps of its full batches."""
        return self._queue(bulk=True)

    def _queue(self, *, bulk: bool) -> str:
        return queue_for(
            tenant_id=self.pk,
            slug=self.slug,
            dedicated=self.dedicated_queue,
            bulk=bulk,
            counts=(settings.WAYPOST_SEND_QUEUES, settings.WAYPOST_BULK_QUEUES),
        )


class SenderStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    BLOCKED = "blocked", "Blocked (provider alert; sending stopped)"
    DISABLED = "disabled", "Disabled by an operator"


class QualityRating(models.TextChoices):
    """A number's quality rating as Meta reports it (``quality_rating``): how its recipients
    received its recent messages (blocks, reports). It no longer lowers the messaging limit
    (since October 2025) but decides automatic scaling and the 1,000 mps upgrade."""

    GREEN = "GREEN", "Green (high)"
    YELLOW = "YELLOW", "Yellow (medium)"
    RED = "RED", "Red (low)"
    UNKNOWN = "UNKNOWN", "Unknown"


def _webhook_token() -> str:
    return secrets.token_urlsafe(32)


class MissingCredential(ImproperlyConfigured):
    """The environment variable a sender names is not set (the message never says its value)."""


class SenderNumber(models.Model):
    """A WhatsApp business phone number a tenant sends from.

    ``messages_per_second`` defaults to 80, Meta's default per-number throughput
    (docs/meta-api.md §3.1); numbers upgraded by Meta may go up to 1,000.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="senders")
    provider = models.CharField(max_length=16, choices=PROVIDER_CHOICES)
    phone_number_id = models.CharField(
        "phone number id",
        max_length=64,
        unique=True,
        validators=[meta_id_validator],
        help_text="Meta's id for the number (digits).",
    )
    waba_id = models.CharField(
        "WABA id",
        max_length=64,
        db_index=True,
        validators=[meta_id_validator],
        help_text="Meta's id for the WhatsApp Business Account (digits). A WABA belongs to one "
        "tenant: its senders may share it, another tenant's may not.",
    )
    display_phone_number = models.CharField(max_length=32, blank=True)
    credentials_env = models.CharField(
        "credential variable",
        max_length=128,
        blank=True,
        validators=[env_var_validator],
        help_text=(
            "Name of the environment variable holding the access token (Meta) or API key "
            "(360dialog), reserved for this tenant: WAYPOST_, the tenant's slug upper-cased "
            "(- as _), two underscores, a name (tenant acme-eu: WAYPOST_ACME_EU__ACCESS_TOKEN). "
            "The secret itself is never stored in the database."
        ),
    )
    messages_per_second = models.PositiveIntegerField(
        default=80, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    marketing_messages_lite = models.BooleanField(
        "Marketing Messages Lite",
        default=False,
        help_text="Send MARKETING templates through Meta's marketing_messages endpoint (the "
        "WABA must be onboarded to MM Lite); other categories keep the Cloud API endpoint.",
    )
    status = models.CharField(
        max_length=16, choices=SenderStatus.choices, default=SenderStatus.ACTIVE
    )
    status_reason = models.CharField(max_length=255, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.CharField(
        max_length=150, blank=True, help_text="pipeline, or the operator who changed it."
    )
    webhook_token = models.CharField(
        max_length=64,
        unique=True,
        default=_webhook_token,
        editable=False,
        help_text="Secret in this sender's own webhook URL (/webhooks/360dialog/<token>).",
    )
    business_id = models.CharField(
        "business portfolio id",
        max_length=64,
        blank=True,
        validators=[meta_id_validator],
        help_text="Meta's id of the business portfolio that owns the number's WABA (digits). "
        "The messaging limit is the portfolio's, shared by all its numbers. Blank: the "
        "tenant's one portfolio (every sender of the tenant left blank shares one limit).",
    )
    # Health, as the provider last reported it (``tenants.services``; history: SenderHealthEvent).
    quality_rating = models.CharField(
        max_length=8, choices=QualityRating.choices, blank=True, help_text="As Meta reports it."
    )
    health_checked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When Waypost last asked the provider for the number's limit and quality.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "phone_number_id"]

    def __str__(self) -> str:
        return f"{self.tenant.slug}:{self.phone_number_id}"

    def clean(self) -> None:
        """What makes a sender its tenant's own, checked wherever one is created or edited
        (the admin's forms, ``tenant_create``): a credential variable reserved for the tenant
        (``credential_env_allowed``), one for a provider that needs it, and a WABA no other
        tenant's sender uses. (The ids' spelling is the fields' validator.)"""
        super().clean()
        if self.tenant_id is None:
            return
        errors: dict[str, str] = {}
        if self.credentials_env and not credential_env_allowed(self.tenant, self.credentials_env):
            errors["credentials_env"] = credential_env_error(self.tenant, self.credentials_env)
        elif not self.credentials_env and _needs_credential(self.provider):
            errors["credentials_env"] = (
                f"A {self.provider} sender needs its credential variable, e.g. "
                f"{credential_env_prefix(self.tenant)}ACCESS_TOKEN."
            )
        cap = settings.WAYPOST_SENDER_MPS_CAP
        if self.messages_per_second and self.messages_per_second > cap:
            errors["messages_per_second"] = (
                f"At most {cap} messages per second (WAYPOST_SENDER_MPS_CAP, the deployment's "
                "cap; Meta's most for one number is 1,000)."
            )
        if self.provider == Provider.SANDBOX and not settings.WAYPOST_SANDBOX_PROVIDER:
            errors["provider"] = (
                "The sandbox provider is a test double this deployment does not allow "
                "(WAYPOST_SANDBOX_PROVIDER)."
            )
        if self.waba_id and waba_taken(waba_id=self.waba_id, tenant=self.tenant, sender=self):
            errors["waba_id"] = f"WABA {self.waba_id} belongs to another tenant's senders."
        if errors:
            raise ValidationError(errors)

    def credential(self) -> str:
        """Read the secret from the environment at the moment it is needed.

        Surrounding whitespace is stripped: a secret written to a file or a ``.env`` line often
        ends in a newline. A value that still holds anything but printable ASCII (a CR or LF
        inside it, another control character) is refused as :class:`MissingCredential`
        naming the variable, never quoting the value, and operators are alerted (once per
        variable per ``_UNUSABLE_ALERT_SECONDS`` in each process): sent as a header it would
        make ``requests`` raise an error that quotes the header — the secret — into the
        message's error and ledger.

        The sandbox accepts any non-empty token, so a sandbox sender without a variable uses a
        fixed placeholder — where the deployment allows the sandbox provider at all
        (``WAYPOST_SANDBOX_PROVIDER``; production does not, unless told to). A variable outside
        the names reserved for the sender's tenant (a row written before that rule, or by hand)
        is refused like a missing one: the rule holds at the moment the secret is read, not
        only in the forms.
        """
        if self.provider == Provider.SANDBOX and not settings.WAYPOST_SANDBOX_PROVIDER:
            raise MissingCredential(
                f"sender {self.phone_number_id} uses the sandbox provider, which this deployment "
                "does not allow (WAYPOST_SANDBOX_PROVIDER)"
            )
        if not self.credentials_env:
            if not provider_class(self.provider).credential_required:
                return "sandbox-token"
            raise MissingCredential(f"sender {self.phone_number_id} names no credential variable")
        name = self.credentials_env
        if not credential_env_allowed(self.tenant, name):
            raise MissingCredential(
                f"environment variable {name} (credential of sender {self.phone_number_id}) is "
                f"not one reserved for its tenant ({credential_env_prefix(self.tenant)}…)"
            )
        value = os.environ.get(name, "").strip()
        if not value:
            raise MissingCredential(
                f"environment variable {name} (credential of sender "
                f"{self.phone_number_id}) is not set"
            )
        if not _HEADER_SAFE.fullmatch(value):
            now = time.monotonic()
            if (
                now - _unusable_alerted.get(name, -_UNUSABLE_ALERT_SECONDS)
                >= _UNUSABLE_ALERT_SECONDS
            ):
                _unusable_alerted[name] = now
                alert(
                    "sender credential unusable: its variable holds a control or non-ASCII "
                    "character",
                    # No query for the slug: this runs in the submit threads.
                    tenant=self.tenant.slug if SenderNumber.tenant.is_cached(self) else "",
                    level="error",
                    tenant_id=str(self.tenant_id),
                    sender=self.phone_number_id,
                    variable=name,
                )
            raise MissingCredential(
                f"environment variable {name} (credential of sender {self.phone_number_id}) "
                "holds a control or non-ASCII character; fix its value"
            )
        return value


# A credential goes into a header: printable ASCII only (no CR, LF or other control character).
_HEADER_SAFE = re.compile(r"[\x20-\x7e]+")
_UNUSABLE_ALERT_SECONDS = 600.0
_unusable_alerted: dict[str, float] = {}  # variable name → when this process last alerted


def _needs_credential(provider: str) -> bool:
    known = provider in {value for value, _label in PROVIDER_CHOICES}
    return known and provider_class(provider).credential_required


def waba_taken(*, waba_id: str, tenant: Tenant, sender: SenderNumber | None = None) -> bool:
    """Whether another tenant's sender (not ``sender`` itself) already uses ``waba_id``: a
    WABA's templates and webhooks are one tenant's, so it may not be shared across tenants."""
    others = SenderNumber.objects.filter(waba_id=waba_id).exclude(tenant_id=tenant.pk)
    if sender is not None and sender.pk is not None:
        others = others.exclude(pk=sender.pk)
    return others.exists()


class HealthSource(models.TextChoices):
    """Where Waypost learned a fact about a sender's health."""

    WEBHOOK = "webhook", "Provider webhook"
    POLL = "poll", "Periodic poll of the provider"
    PIPELINE = "pipeline", "Send pipeline (a provider's answer)"
    OPERATOR = "operator", "Operator"


class PortfolioLimit(models.Model):
    """The messaging limit of one of a tenant's business portfolios: how many unique users its
    numbers together may reach outside a customer-service window in a moving 24 hours
    (``tenants.limits``; Meta's messaging-limits page). One row per portfolio, the latest fact;
    how it changed is in ``SenderHealthEvent`` (kind ``limit``)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="portfolio_limits")
    business_id = models.CharField(
        "business portfolio id",
        max_length=64,
        blank=True,
        help_text="Blank: the tenant's one portfolio (its senders without a portfolio id).",
    )
    limit = models.IntegerField(
        null=True,
        blank=True,
        help_text="Unique users per moving 24 hours; -1 unlimited; empty unknown.",
    )
    tier = models.CharField(max_length=32, blank=True, help_text="What Meta said, as it said it.")
    source = models.CharField(max_length=10, choices=HealthSource.choices)
    learned_at = models.DateTimeField(help_text="When the fact was true (the provider's time).")

    class Meta:
        ordering = ["tenant", "business_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "business_id"], name="portfolio_limit_once"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.business_id or '(default portfolio)'} {self.tier}"


class HealthKind(models.TextChoices):
    QUALITY = "quality", "Quality rating"
    LIMIT = "limit", "Messaging limit"
    THROUGHPUT = "throughput", "Throughput"
    ALERT = "alert", "Account alert"
    SPAM_RATE_LIMIT = "spam_rate_limit", "Spam rate limit (131048)"


class SenderHealthEvent(models.Model):
    """What changed in a sender's (or its portfolio's) health, when, and from which source.
    Append-only: written by ``tenants.services``, never changed (the admin shows it read-only).

    A portfolio's event (a limit) names the sender it was learned through when there was one;
    ``business_id`` always says the portfolio ("" the tenant's one)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="health_events")
    sender = models.ForeignKey(
        SenderNumber,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="health_events",
        db_index=False,  # the index below starts with it
    )
    business_id = models.CharField("business portfolio id", max_length=64, blank=True)
    kind = models.CharField(max_length=16, choices=HealthKind.choices)
    previous = models.CharField(max_length=100, blank=True)
    value = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=10, choices=HealthSource.choices)
    detail = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = "sender health event"
        indexes = [
            # A sender's history (the admin), and "spam-limited since?" (campaigns).
            models.Index(fields=["sender", "kind", "-occurred_at"], name="health_sender_kind"),
            # A tenant's history, newest first.
            models.Index(fields=["tenant", "-occurred_at"], name="health_tenant_newest"),
        ]

    def __str__(self) -> str:
        change = f"{self.previous} → {self.value}" if self.previous else self.value
        return f"{self.kind}: {change} ({self.source})"


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A tenant's API key. Shown once at creation; only its prefix and SHA-256 are stored.

    Keys are 256-bit random strings, so a fast hash is enough (no password stretching is
    needed against brute force of a random 43-character secret).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.tenant.slug}:{self.prefix}…"


class StaffScope(models.Model):
    """The tenants a staff user may see and act on in the admin. Superusers, and users with
    the ``tenants.all_tenants`` permission, see every tenant; a staff user without a scope
    sees none."""

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE, related_name="staff_scope")
    tenants = models.ManyToManyField(Tenant, blank=True, related_name="staff_scopes")

    class Meta:
        verbose_name = "staff scope"
        permissions = [("all_tenants", "Can see and act on every tenant in the admin")]

    def __str__(self) -> str:
        return f"{self.user}: {self.tenants.count()} tenant(s)"
